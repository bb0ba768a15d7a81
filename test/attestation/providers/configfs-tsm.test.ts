import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyEvidence } from '../../../src/attestation/evidence/index.ts';
import { buildCertTable, CERT_TABLE_GUIDS, configfsTsmProvider, detectProvider, nodeTsmFileSystem, parseCertTable } from '../../../src/attestation/providers/index.ts';
import { openSimulatedTee, type SimulatedTee } from '../../../src/attestation/sim/index.ts';
import { toHex } from '../../../src/util/index.ts';
import { FakeTsmKernel } from './fake-tsm-kernel.ts';

let base: string;
let sim: SimulatedTee;
const reportData = Uint8Array.from({ length: 64 }, (_, i) => i ^ 0x5a);

/** A fresh configfs-like root with an empty tsm/report directory. */
async function configfsRoot(): Promise<string> {
  const root = await mkdtemp(path.join(base, 'configfs-'));
  await mkdir(path.join(root, 'tsm', 'report'), { recursive: true });
  return root;
}

async function entriesLeft(root: string): Promise<string[]> {
  return readdir(path.join(root, 'tsm', 'report'));
}

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'attex-tsm-'));
  sim = await openSimulatedTee(path.join(base, 'sim'));
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('configfs-tsm provider', () => {
  it('SEV-SNP: report from outblob, VCEK from the auxblob cert table; verifies; entry removed', async () => {
    const root = await configfsRoot();
    const kernel = new FakeTsmKernel(sim);
    const pkg = await configfsTsmProvider({ root, fs: kernel }).collect(reportData);
    expect(pkg.kind).toBe('snp');
    expect(pkg.certs).toHaveLength(1);
    const result = await verifyEvidence(pkg, { trust: { amd: sim.amdRoots, intel: sim.intelRoots, allowSimulated: true }, now: new Date() });
    expect(result.reasons).toEqual([]);
    expect(result.outcome).toBe('accept');
    expect(result.fields['report_data']).toBe(toHex(reportData));
    expect(await entriesLeft(root)).toEqual([]);
  });

  it('TDX: the quote from outblob (no collateral at collection time)', async () => {
    const root = await configfsRoot();
    const pkg = await configfsTsmProvider({ root, fs: new FakeTsmKernel(sim, { provider: 'tdx_guest' }) }).collect(reportData);
    expect(pkg.kind).toBe('tdx');
    expect(pkg.collateral).toBeUndefined();
    const result = await verifyEvidence(pkg, { trust: { amd: sim.amdRoots, intel: sim.intelRoots, allowSimulated: true }, now: new Date() });
    expect(result.fields['report_data']).toBe(toHex(reportData));
    expect(result.outcome).toBe('chain-only'); // no collateral: signatures and the PCK chain only
  });

  it('retries when generation shows a concurrent writer, then succeeds', async () => {
    const root = await configfsRoot();
    const kernel = new FakeTsmKernel(sim, { races: 1 });
    const pkg = await configfsTsmProvider({ root, fs: kernel }).collect(reportData);
    expect(pkg.kind).toBe('snp');
    expect(kernel.inblobWrites).toBe(2);
  });

  it('gives up with provider.race after the bounded attempts, and still removes the entry', async () => {
    const root = await configfsRoot();
    const kernel = new FakeTsmKernel(sim, { races: 100 });
    await expect(configfsTsmProvider({ root, fs: kernel, maxAttempts: 3 }).collect(reportData)).rejects.toMatchObject({ code: 'provider.race' });
    expect(kernel.inblobWrites).toBe(3);
    expect(await entriesLeft(root)).toEqual([]);
  });

  it('a collection that the kernel never answers ends at its deadline as provider.timeout; the entry goes once the read returns', async () => {
    const root = await configfsRoot();
    let answer!: () => void;
    const gate = new Promise<void>((resolve) => (answer = resolve));
    const kernel = new FakeTsmKernel(sim, { outblobGate: gate });
    await expect(configfsTsmProvider({ root, fs: kernel, collectTimeoutMs: 200 }).collect(reportData)).rejects.toMatchObject({ code: 'provider.timeout' });
    expect(await entriesLeft(root)).toHaveLength(1); // the stuck read still holds it
    answer();
    for (let i = 0; i < 100 && (await entriesLeft(root)).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await entriesLeft(root)).toEqual([]);
    expect(kernel.inblobWrites).toBe(1); // no further attempt after the deadline
  });

  it('EACCES becomes provider.permission with advice to run as root or grant access', async () => {
    const root = await configfsRoot();
    await expect(configfsTsmProvider({ root, fs: new FakeTsmKernel(sim, { denyMkdir: true }) }).collect(reportData)).rejects.toMatchObject({
      code: 'provider.permission',
      message: expect.stringContaining('run as root'),
    });
  });

  it('a missing report directory is provider.unavailable naming the kernel requirement', async () => {
    await expect(configfsTsmProvider({ root: path.join(base, 'nowhere') }).collect(reportData)).rejects.toMatchObject({
      code: 'provider.unavailable',
      message: expect.stringContaining('Linux 6.7+'),
    });
  });

  it('a plain directory that is not configfs fails cleanly and leaves nothing behind', async () => {
    const root = await configfsRoot();
    await expect(configfsTsmProvider({ root, fs: nodeTsmFileSystem }).collect(reportData)).rejects.toMatchObject({ code: 'provider.unavailable' });
    expect(await entriesLeft(root)).toEqual([]);
  });

  it('an unknown TSM provider and a stale outblob are refused', async () => {
    await expect(configfsTsmProvider({ root: await configfsRoot(), fs: new FakeTsmKernel(sim, { provider: 'arm_cca_guest' }) }).collect(reportData)).rejects.toMatchObject({
      code: 'provider.unsupported',
    });
    await expect(configfsTsmProvider({ root: await configfsRoot(), fs: new FakeTsmKernel(sim, { staleOutblob: true }) }).collect(reportData)).rejects.toMatchObject({
      code: 'provider.stale-report',
    });
  });

  it('rejects report data that is not 64 bytes', async () => {
    await expect(configfsTsmProvider({ root: await configfsRoot(), fs: new FakeTsmKernel(sim) }).collect(new Uint8Array(10))).rejects.toMatchObject({
      code: 'provider.report-data',
    });
  });
});

describe('SNP certificate table', () => {
  const cert = Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x00);
  it('finds the VCEK by GUID in either byte order', () => {
    const table = buildCertTable([{ guid: CERT_TABLE_GUIDS.vcek, cert }]);
    expect(parseCertTable(table)).toEqual([{ guid: CERT_TABLE_GUIDS.vcek, role: 'vcek', cert }]);
    const mixed = table.slice();
    mixed.set(table.subarray(0, 4).reverse(), 0);
    mixed.set(table.subarray(4, 6).reverse(), 4);
    mixed.set(table.subarray(6, 8).reverse(), 6);
    expect(parseCertTable(mixed)[0]?.role).toBe('vcek');
  });

  it('refuses entries pointing outside the table and tables without a terminator', () => {
    const table = buildCertTable([{ guid: CERT_TABLE_GUIDS.vlek, cert }]);
    const bad = table.slice();
    new DataView(bad.buffer).setUint32(20, 1000, true);
    expect(() => parseCertTable(bad)).toThrow(expect.objectContaining({ code: 'provider.malformed' }));
    expect(() => parseCertTable(table.subarray(0, 24))).toThrow(expect.objectContaining({ code: 'provider.malformed' }));
  });
});

describe('detectProvider', () => {
  it('prefers configfs-tsm when its report directory exists', async () => {
    const provider = await detectProvider({ configfsRoot: await configfsRoot(), tpmDevice: path.join(base, 'no-tpm') });
    expect(provider.name).toBe('configfs-tsm');
  });

  it('falls back to the simulated TEE only when given a state directory, and explains what is missing otherwise', async () => {
    const none = { configfsRoot: path.join(base, 'no-configfs'), tpmDevice: path.join(base, 'no-tpm') };
    const provider = await detectProvider({ ...none, simStateDir: path.join(base, 'sim') });
    expect(provider.name).toBe('sim');
    const pkg = await provider.collect(reportData);
    expect(pkg.kind).toBe('snp');
    await expect(detectProvider(none)).rejects.toMatchObject({
      code: 'provider.none',
      message: expect.stringMatching(/configfs-tsm: .*missing[\s\S]*azure-vtpm: no TPM[\s\S]*sim: .*--sim-state/),
    });
    await expect(detectProvider({ prefer: 'tpm2' as 'sim' })).rejects.toMatchObject({ code: 'provider.unknown' });
  });
});
