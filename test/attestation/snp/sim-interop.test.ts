/** The simulated TEE's SNP and Azure HCL evidence passes these verifiers only when simulated roots are allowed. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAzureHcl } from '../../../src/attestation/azure-hcl/index.ts';
import { openSimulatedTee } from '../../../src/attestation/sim/index.ts';
import { verifySnp } from '../../../src/attestation/snp/index.ts';
import type { TrustStore } from '../../../src/attestation/types.ts';
import { amdRootSets } from './vectors.ts';

let dir: string;
let sim: Awaited<ReturnType<typeof openSimulatedTee>>;
const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'attex-snp-sim-'));
  sim = await openSimulatedTee(dir);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('simulated TEE evidence', () => {
  for (const product of ['Milan', 'Genoa', 'Turin'] as const) {
    for (const version of [3, 5] as const) {
      it(`${product} v${version}: sim-snp with allowSimulated, attestation.simulated-root without`, async () => {
        const reportData = new Uint8Array(64).fill(9);
        const pkg = await sim.snpEvidence(reportData, { version, product });
        const trust: TrustStore = { amd: [...amdRootSets(), ...sim.amdRoots], intel: [], allowSimulated: true };
        const input = { evidence: b64(pkg.evidence), vekCert: b64(pkg.certs![0]!), trust, now: new Date() };
        const ok = await verifySnp(input);
        expect(ok.reasons).toEqual([]);
        expect(ok.tee).toBe('sim-snp');
        expect(ok.simulated).toBe(true);
        expect(ok.fields['report_data']).toBe('09'.repeat(64));
        expect((ok.fields['cpuid'] as { product: string }).product).toBe(product);
        const denied = await verifySnp({ ...input, trust: { ...trust, allowSimulated: false } });
        expect(denied.reasons.map((r) => r.code)).toEqual(['attestation.simulated-root']);
      });
    }
  }

  it('Azure HCL from the simulator (a shorter blob) verifies and exposes user_data', async () => {
    const userData = new Uint8Array(64).fill(0xab);
    const pkg = await sim.azureHclEvidence(userData);
    const evidence = b64(pkg.evidence);
    expect(evidence.length).not.toBe(2600);
    const trust: TrustStore = { amd: [...amdRootSets(), ...sim.amdRoots], intel: [], allowSimulated: true };
    const result = await verifyAzureHcl({ evidence, vekCert: b64(pkg.certs![0]!), trust, now: new Date() });
    expect(result.reasons).toEqual([]);
    expect(result.kind).toBe('azure-hcl-snp');
    expect(result.tee).toBe('sim-snp');
    expect(result.fields['user_data']).toBe('ab'.repeat(64));
  });
});
