import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyEvidence } from '../../../src/attestation/evidence/index.ts';
import {
  azureVtpmProvider, detectProvider, getTpmProperty, HCL_REPORT_INDEX, nvDefineSpace, nvRead, nvReadPublic, nvWrite,
  openTpmTransport, PT_NV_BUFFER_MAX, TpmResponseError, USER_DATA_INDEX,
} from '../../../src/attestation/providers/index.ts';
import { openSimulatedTee, type SimulatedTee } from '../../../src/attestation/sim/index.ts';
import { toHex } from '../../../src/util/index.ts';
import { type RunningSwtpm, startSwtpm } from './swtpm.ts';

let tpm: RunningSwtpm;
let sim: SimulatedTee;
let stateDir: string;
const akPub = { kid: 'HCLAkPub', key_ops: ['sign'], ...generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }) };

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(os.tmpdir(), 'attex-vtpm-sim-'));
  [tpm, sim] = await Promise.all([startSwtpm(), openSimulatedTee(stateDir)]);
});

afterAll(async () => {
  await tpm?.stop();
  await rm(stateDir, { recursive: true, force: true });
});

/** Play the Azure HCL firmware: put an HCL report whose claims carry `userData` in 0x01400001. */
async function firmwareWrites(userData: Uint8Array): Promise<Uint8Array> {
  const t = await openTpmTransport(tpm.target);
  try {
    const maxChunk = await getTpmProperty(t, PT_NV_BUFFER_MAX);
    let size: number;
    try {
      size = (await nvReadPublic(t, HCL_REPORT_INDEX)).dataSize;
    } catch (err) {
      if (!(err instanceof TpmResponseError && err.isHandleError)) throw err;
      size = 2048; // swtpm's largest NV index
      await nvDefineSpace(t, HCL_REPORT_INDEX, size);
    }
    const pkg = await sim.azureHclEvidence(userData, { totalSize: size, keys: [akPub] });
    const blob = new Uint8Array(Buffer.from(pkg.evidence, 'base64'));
    await nvWrite(t, HCL_REPORT_INDEX, blob, maxChunk);
    return blob;
  } finally {
    await t.close();
  }
}

const vcek = async () => new Uint8Array(Buffer.from((await sim.snpEvidence(new Uint8Array(64))).certs![0]!, 'base64'));

describe('Azure vTPM provider against swtpm', () => {
  it('refuses a TPM without the Azure NV indexes, naming the index', async () => {
    const provider = azureVtpmProvider({ device: tpm.target, vcek });
    await expect(provider.collect(new Uint8Array(64).fill(1))).rejects.toMatchObject({ code: 'provider.unavailable', message: expect.stringContaining('0x01400002') });
    await expect(detectProvider({ configfsRoot: path.join(stateDir, 'no-configfs'), tpmDevice: tpm.target })).rejects.toMatchObject({
      code: 'provider.none',
      message: expect.stringMatching(/configfs-tsm:.*tsm\/report is missing[\s\S]*azure-vtpm:.*0x01400001[\s\S]*sim: .*--sim-state/),
    });
  });

  it('writes the user data, reads the HCL report in TPM-sized chunks, and it verifies bound to the report data', async () => {
    const reportData = Uint8Array.from({ length: 64 }, (_, i) => (i * 7 + 3) & 0xff);
    const written = await firmwareWrites(reportData);
    const t = await openTpmTransport(tpm.target);
    const maxChunk = await getTpmProperty(t, PT_NV_BUFFER_MAX);
    await t.close();
    expect(maxChunk).toBeLessThan(written.length); // the read really is chunked

    const provider = azureVtpmProvider({ device: tpm.target, vcek, defineUserDataIndex: true });
    const pkg = await provider.collect(reportData);
    expect(pkg.kind).toBe('azure-hcl-snp');
    expect(Buffer.from(pkg.evidence, 'base64').equals(Buffer.from(written))).toBe(true);

    const t2 = await openTpmTransport(tpm.target);
    expect(toHex(await nvRead(t2, USER_DATA_INDEX, 64, maxChunk))).toBe(toHex(reportData));
    await t2.close();

    const trust = { amd: sim.amdRoots, intel: sim.intelRoots, allowSimulated: true };
    const result = await verifyEvidence(pkg, { trust, now: new Date() });
    expect(result.reasons).toEqual([]);
    expect(result.outcome).toBe('accept');
    expect(result.tee).toBe('sim-snp');
    expect(result.fields['user_data']).toBe(toHex(reportData));
    const strict = await verifyEvidence(pkg, { trust: { ...trust, allowSimulated: false }, now: new Date() });
    expect(strict.outcome).toBe('reject');
    expect(strict.reasons.map((r) => r.code)).toContain('attestation.simulated-root');
  });

  it('reports a stale HCL report when the firmware never reflects our user data', async () => {
    await firmwareWrites(new Uint8Array(64).fill(0xaa));
    const provider = azureVtpmProvider({ device: tpm.target, vcek, refreshAttempts: 2, refreshDelayMs: 10 });
    await expect(provider.collect(new Uint8Array(64).fill(0xbb))).rejects.toMatchObject({ code: 'provider.stale-report' });
  });

  it('is auto-detected when configfs-tsm is absent and the vTPM has the HCL index', async () => {
    const provider = await detectProvider({ configfsRoot: path.join(stateDir, 'no-configfs'), tpmDevice: tpm.target });
    expect(provider.name).toBe('azure-vtpm');
  });

  it('rejects report data that is not 64 bytes before touching the TPM', async () => {
    const provider = azureVtpmProvider({ device: 'tcp:127.0.0.1:1' });
    await expect(provider.collect(new Uint8Array(32))).rejects.toMatchObject({ code: 'provider.report-data' });
  });

  it('fails cleanly when nothing listens at the TPM address', async () => {
    const provider = azureVtpmProvider({ device: 'tcp:127.0.0.1:1', vcek });
    await expect(provider.collect(new Uint8Array(64))).rejects.toMatchObject({ code: 'provider.unavailable' });
  });
});
