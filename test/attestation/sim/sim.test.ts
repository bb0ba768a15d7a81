import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSnpReport } from '../../../src/attestation/snp/index.ts';
import { verifyEvidence } from '../../../src/attestation/evidence/index.ts';
import { loadSimulatedRoots, openSimulatedTee, type SimulatedTee } from '../../../src/attestation/sim/index.ts';
import type { TrustStore } from '../../../src/attestation/types.ts';
import { toHex } from '../../../src/util/index.ts';

let dir: string;
let sim: SimulatedTee;
const tmpDirs: string[] = [];
const reportData = Uint8Array.from({ length: 64 }, (_, i) => 255 - i);

async function tmp(prefix: string): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}

function trust(allowSimulated: boolean): TrustStore {
  return { amd: sim.amdRoots, intel: sim.intelRoots, allowSimulated };
}

beforeAll(async () => {
  dir = await tmp('attex-sim-');
  sim = await openSimulatedTee(dir);
});

afterAll(async () => {
  await Promise.all(tmpDirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('simulated SEV-SNP evidence', () => {
  for (const [version, product] of [[3, 'Milan'], [5, 'Genoa'], [5, 'Turin']] as const) {
    it(`v${version} ${product}: accepted by the real verifier only with allowSimulated`, async () => {
      const pkg = await sim.snpEvidence(reportData, { version, product });
      expect(pkg.kind).toBe('snp');
      const report = parseSnpReport(new Uint8Array(Buffer.from(pkg.evidence, 'base64')));
      expect(report.raw.length).toBe(1184);

      const ok = await verifyEvidence(pkg, { trust: trust(true), now: new Date() });
      expect(ok.reasons).toEqual([]);
      expect(ok).toMatchObject({ outcome: 'accept', simulated: true, tee: 'sim-snp', kind: 'snp' });
      expect(ok.fields).toMatchObject({
        version,
        report_data: toHex(reportData),
        measurement: toHex(sim.measurement),
        debug_allowed: false,
        vmpl: 0,
        signing_key: 'vcek',
      });
      expect((ok.fields['cpuid'] as { product: string }).product).toBe(product);

      const strict = await verifyEvidence(pkg, { trust: trust(false), now: new Date() });
      expect(strict.outcome).toBe('reject');
      const reason = strict.reasons.find((r) => r.code === 'attestation.simulated-root');
      expect(reason?.message).toContain(`ARK-${product} (attex simulated)`);
    });
  }

  it('a tampered simulated report is rejected even with allowSimulated', async () => {
    const pkg = await sim.snpEvidence(reportData);
    const bytes = Buffer.from(pkg.evidence, 'base64');
    bytes[0x90] = bytes[0x90]! ^ 1; // flip a measurement bit
    const result = await verifyEvidence({ ...pkg, evidence: bytes.toString('base64') }, { trust: trust(true), now: new Date() });
    expect(result.outcome).toBe('reject');
  });

  it('refuses report data that is not 64 bytes and unknown options', async () => {
    await expect(sim.snpEvidence(new Uint8Array(63))).rejects.toMatchObject({ code: 'sim.report-data' });
    await expect(sim.tdxEvidence(new Uint8Array(65))).rejects.toMatchObject({ code: 'sim.report-data' });
    await expect(sim.snpEvidence(reportData, { version: 2 as 3 })).rejects.toMatchObject({ code: 'sim.options' });
  });
});

describe('simulated TDX evidence', () => {
  it('a v4 quote with collateral: accept / UpToDate with allowSimulated, rejected without', async () => {
    const pkg = await sim.tdxEvidence(reportData);
    expect(pkg.kind).toBe('tdx');
    expect(Object.keys(pkg.collateral ?? {}).sort()).toEqual(
      ['pckCrl', 'pckCrlIssuerChain', 'qeIdentity', 'qeIdentityIssuerChain', 'rootCaCrl', 'tcbInfo', 'tcbInfoIssuerChain'],
    );
    const ok = await verifyEvidence(pkg, { trust: trust(true), now: new Date() });
    expect(ok.reasons).toEqual([]);
    expect(ok).toMatchObject({ outcome: 'accept', tcb_status: 'UpToDate', simulated: true, tee: 'sim-tdx' });
    expect(ok.fields).toMatchObject({ version: 4, mr_td: toHex(sim.measurement), report_data: toHex(reportData), debug: false });

    const strict = await verifyEvidence(pkg, { trust: trust(false), now: new Date() });
    expect(strict.outcome).toBe('reject');
    expect(strict.reasons.find((r) => r.code === 'attestation.simulated-root')?.message).toContain('Intel SGX Root CA (attex simulated)');
  });

  it('collateral expires like Intel\'s: 40 days later the verifier no longer accepts it', async () => {
    const pkg = await sim.tdxEvidence(reportData);
    const later = await verifyEvidence(pkg, { trust: trust(true), now: new Date(Date.now() + 40 * 24 * 3600 * 1000) });
    expect(later.outcome).toBe('reject');
  });
});

describe('state directory', () => {
  it('keeps keys private (0600) and exposes PEM roots', async () => {
    const keyMode = (await stat(path.join(dir, 'sim-tee-v1', 'keys', 'vcek_milan.pem'))).mode & 0o777;
    expect(keyMode).toBe(0o600);
    const arkPem = await readFile(path.join(sim.rootsDir, 'amd', 'ark_milan.pem'), 'utf8');
    expect(arkPem).toContain('-----BEGIN CERTIFICATE-----');
    expect(sim.amdRoots.every((r) => r.simulated) && sim.intelRoots.every((r) => r.simulated)).toBe(true);
  });

  it('reopening the same directory yields the same roots; loadSimulatedRoots never generates', async () => {
    const again = await openSimulatedTee(dir);
    expect(Buffer.from(again.amdRoots[0]!.ark.rawData).equals(Buffer.from(sim.amdRoots[0]!.ark.rawData))).toBe(true);
    expect(Buffer.from(again.intelRoots[0]!.root.rawData).equals(Buffer.from(sim.intelRoots[0]!.root.rawData))).toBe(true);
    const loaded = await loadSimulatedRoots(dir);
    expect(loaded.rootsDir).toBe(sim.rootsDir);
    await expect(loadSimulatedRoots(await tmp('attex-sim-empty-'))).rejects.toMatchObject({ code: 'sim.state' });
  });

  it('a new directory yields new roots, and concurrent first opens agree on one state', async () => {
    const fresh = await tmp('attex-sim-fresh-');
    const [a, b] = await Promise.all([openSimulatedTee(fresh), openSimulatedTee(fresh)]);
    expect(Buffer.from(a.amdRoots[0]!.ark.rawData).equals(Buffer.from(b.amdRoots[0]!.ark.rawData))).toBe(true);
    expect(Buffer.from(a.amdRoots[0]!.ark.rawData).equals(Buffer.from(sim.amdRoots[0]!.ark.rawData))).toBe(false);
    // Evidence from the other state does not verify against this state's roots.
    const foreign = await a.snpEvidence(reportData);
    expect((await verifyEvidence(foreign, { trust: trust(true), now: new Date() })).outcome).toBe('reject');
  });

  it('a state path that is a file is refused with sim.state', async () => {
    const file = path.join(await tmp('attex-sim-file-'), 'not-a-dir');
    await writeFile(file, 'x');
    await expect(openSimulatedTee(file)).rejects.toMatchObject({ code: 'sim.state' });
    await expect(openSimulatedTee(path.join(file, 'below'))).rejects.toMatchObject({ code: 'sim.state' });
  });

  it('a corrupted state is refused with sim.state rather than regenerated', async () => {
    const broken = await tmp('attex-sim-broken-');
    await openSimulatedTee(broken);
    await writeFile(path.join(broken, 'sim-tee-v1', 'state.json'), '{"format":"something-else"}');
    await expect(openSimulatedTee(broken)).rejects.toMatchObject({ code: 'sim.state' });
  });
});

describe('measurement', () => {
  it('derives from the source tree and measurementInput', async () => {
    const a = await openSimulatedTee(dir, { measurementInput: new TextEncoder().encode('{"config":1}') });
    const b = await openSimulatedTee(dir, { measurementInput: new TextEncoder().encode('{"config":2}') });
    const a2 = await openSimulatedTee(dir, { measurementInput: new TextEncoder().encode('{"config":1}') });
    expect(a.measurement.length).toBe(48);
    expect(toHex(a.measurement)).not.toBe(toHex(b.measurement));
    expect(toHex(a.measurement)).toBe(toHex(a2.measurement));
    expect(toHex(a.measurement)).not.toBe(toHex(sim.measurement));
  });
});
