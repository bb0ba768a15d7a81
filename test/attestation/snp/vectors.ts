/** The real AMD vectors (../shared/vectors from the repo root) and a TrustStore of AMD's roots. */
import 'reflect-metadata';
import { X509Certificate } from '@peculiar/x509';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AmdProduct, AmdRootSet, TrustStore } from '../../../src/attestation/types.ts';

export const repoRoot = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
export const vectorsDir = path.resolve(repoRoot, '../shared/vectors');

export interface SnpVector {
  readonly name: string;
  readonly kind: 'snp' | 'azure-hcl-snp';
  readonly product: AmdProduct;
  readonly signingKey: 'vcek' | 'vlek';
  readonly now: Date;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly outcome: string;
  /** report.bin, or hcl-report.bin for azure-hcl-snp. */
  readonly evidence: Uint8Array;
  readonly vekCert: Uint8Array;
  readonly fields: Record<string, unknown>;
  readonly hcl: Record<string, unknown> | undefined;
}

const read = (...parts: string[]): Uint8Array => new Uint8Array(readFileSync(path.join(vectorsDir, ...parts)));

type Json = any;

export function loadSnpVectors(): SnpVector[] {
  const expected: Json = JSON.parse(readFileSync(path.join(vectorsDir, 'expected.json'), 'utf8'));
  return Object.entries<Json>(expected.vectors)
    .filter(([name]) => name.startsWith('snp/'))
    .map(([name, v]) => ({
      name,
      kind: v.kind,
      product: v.product,
      signingKey: v.signing_key,
      now: new Date(v.now),
      notBefore: new Date(v.validity_window.not_before),
      notAfter: new Date(v.validity_window.not_after),
      outcome: v.expected.outcome,
      evidence: read(name, v.kind === 'snp' ? 'report.bin' : 'hcl-report.bin'),
      vekCert: read(name, `${v.signing_key}.der`),
      fields: v.fields,
      hcl: v.hcl,
    }));
}

export function vector(name: string): SnpVector {
  const found = loadSnpVectors().find((v) => v.name === name);
  if (found === undefined) throw new Error(`no vector ${name}`);
  return found;
}

const pem = (name: string): X509Certificate => new X509Certificate(readFileSync(path.join(vectorsDir, 'roots/amd', `${name}.pem`), 'utf8'));

export function amdRootSets(): AmdRootSet[] {
  return (['Milan', 'Genoa', 'Turin'] as const).map((product) => {
    const p = product.toLowerCase();
    return { product, ark: pem(`ark_${p}`), ask: pem(`ask_${p}`), asvk: pem(`asvk_${p}`), simulated: false };
  });
}

export function amdTrust(extra: AmdRootSet[] = [], allowSimulated = false): TrustStore {
  return { amd: [...amdRootSets(), ...extra], intel: [], allowSimulated };
}
