/** Loads the shared TDX vendor vectors and their expected results for the TDX tests. */
import 'reflect-metadata';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { X509Certificate } from '@peculiar/x509';
import type { TdxCollateral, TrustStore } from '../../../src/attestation/types.ts';

export const repoRoot = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
export const vectorsDir = path.resolve(repoRoot, '../shared/vectors');

export interface TdxVector {
  readonly name: string;
  readonly quote: Uint8Array;
  readonly collateral: TdxCollateral;
  readonly now: Date;
  // expected.json entry (untyped JSON)
  readonly expected: any;
}

const expectedJson = JSON.parse(readFileSync(path.join(vectorsDir, 'expected.json'), 'utf8'));

function loadCollateral(dir: string): TdxCollateral {
  const bytes = (f: string) => (existsSync(path.join(dir, f)) ? new Uint8Array(readFileSync(path.join(dir, f))) : undefined);
  const text = (f: string) => (existsSync(path.join(dir, f)) ? readFileSync(path.join(dir, f), 'utf8') : undefined);
  return {
    tcbInfo: bytes('tcb-info.json'),
    tcbInfoIssuerChain: text('tcb-info-issuer-chain.pem'),
    qeIdentity: bytes('qe-identity.json'),
    qeIdentityIssuerChain: text('qe-identity-issuer-chain.pem'),
    pckCrl: bytes('pck-crl.der'),
    pckCrlIssuerChain: text('pck-crl-issuer-chain.pem'),
    rootCaCrl: bytes('root-ca-crl.der'),
  };
}

export const tdxVectors: TdxVector[] = Object.entries<any>(expectedJson.vectors)
  .filter(([name]) => name.startsWith('tdx/'))
  .map(([name, expected]) => ({
    name,
    quote: new Uint8Array(readFileSync(path.join(vectorsDir, name, 'quote.bin'))),
    collateral: loadCollateral(path.join(vectorsDir, name, 'collateral')),
    now: new Date(expected.now),
    expected,
  }));

export function vector(name: string): TdxVector {
  const v = tdxVectors.find((x) => x.name === `tdx/${name}`);
  if (v === undefined) throw new Error(`no vector ${name}`);
  return v;
}

/** The Intel SGX Root CA the project ships, as the only anchor. */
export const intelRoot = new X509Certificate(readFileSync(path.join(repoRoot, 'attestation/roots/sgx_root_ca.pem'), 'utf8'));

export function trustStore(opts: { simulated?: boolean; allowSimulated?: boolean } = {}): TrustStore {
  return { amd: [], intel: [{ root: intelRoot, simulated: opts.simulated ?? false }], allowSimulated: opts.allowSimulated ?? false };
}
