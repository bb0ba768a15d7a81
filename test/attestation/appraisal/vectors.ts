/** Runs the real verifiers over the shared vendor vectors at their pinned instants. */
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCollateralDir, loadRootsDir, makeEvidencePackage, verifyEvidence } from '../../../src/attestation/evidence/index.ts';
import type { TrustStore, VerificationResult } from '../../../src/attestation/types.ts';

const repoRoot = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
export const VECTORS = path.resolve(repoRoot, '../shared/vectors');

let expected: { vectors: Record<string, { now: string; kind: string }> } | undefined;
let trust: TrustStore | undefined;

export async function vendorTrust(): Promise<TrustStore> {
  if (!trust) {
    const amd = await loadRootsDir(path.join(VECTORS, 'roots/amd'));
    const intel = await loadRootsDir(path.join(VECTORS, 'roots/intel'));
    trust = { amd: amd.amd, intel: intel.intel, allowSimulated: false };
  }
  return trust;
}

export async function verifyVector(name: string): Promise<VerificationResult> {
  expected ??= JSON.parse(await readFile(path.join(VECTORS, 'expected.json'), 'utf8'));
  const meta = expected!.vectors[name]!;
  const dir = path.join(VECTORS, name);
  const files = await readdir(dir);
  let pkg;
  if (meta.kind === 'tdx') {
    const collateral = files.includes('collateral') ? await loadCollateralDir(path.join(dir, 'collateral')) : undefined;
    pkg = makeEvidencePackage({ kind: 'tdx', evidence: await readFile(path.join(dir, 'quote.bin')), ...(collateral && { collateral }) });
  } else {
    const evidence = await readFile(path.join(dir, meta.kind === 'azure-hcl-snp' ? 'hcl-report.bin' : 'report.bin'));
    const cert = await readFile(path.join(dir, files.includes('vlek.der') ? 'vlek.der' : 'vcek.der'));
    pkg = makeEvidencePackage({ kind: meta.kind as 'snp', evidence, certs: [cert] });
  }
  return verifyEvidence(pkg, { trust: await vendorTrust(), now: new Date(meta.now) });
}
