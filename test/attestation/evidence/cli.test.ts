/** `attex evidence` dispatch and `attex evidence verify` behaviour beyond the vectors. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEvidencePackage, makeEvidencePackage } from '../../../src/attestation/index.ts';
import { openSimulatedTee } from '../../../src/attestation/sim/index.ts';
import { loadVectors, repoRoot, runCaptured, verifyArgs } from './vectors.ts';

const vectors = loadVectors();
const byName = (name: string) => vectors.find((v) => v.name === name)!;
const snp = byName('snp/genoa-v5-oak');
const tdx = byName('tdx/v4-dcap-qvl');
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'attex-cli-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('attex evidence', () => {
  it('lists its sub-commands on --help and on a bare call (exit 2)', async () => {
    const help = await runCaptured(['evidence', '--help']);
    expect(help.code).toBe(0);
    for (const sub of ['verify', 'simulate', 'collect', 'appraise']) expect(help.stdout).toMatch(new RegExp(`^  ${sub} `, 'm'));
    const bare = await runCaptured(['evidence']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('sub-commands:');
  });

  it('prints the sub-command help for `evidence verify --help` and `evidence help verify`', async () => {
    for (const argv of [['evidence', 'verify', '--help'], ['evidence', 'verify', 'x.bin', '-h'], ['evidence', 'help', 'verify']]) {
      const run = await runCaptured(argv);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^usage: attex evidence verify <file>/);
      expect(run.stdout).toContain('--require-collateral');
    }
  });

  it('refuses an unknown sub-command', async () => {
    const run = await runCaptured(['evidence', 'frobnicate']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("unknown sub-command 'frobnicate'");
  });
});

describe('attex evidence verify', () => {
  it('prints a human summary by default', async () => {
    const run = await runCaptured(verifyArgs(snp));
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^kind +snp$/m);
    expect(run.stdout).toMatch(/^outcome +accept$/m);
    expect(run.stdout).toMatch(/^tcb status +-$/m);
    expect(run.stdout).toMatch(/^reported_tcb +bl=10 tee=0 snp=25 ucode=84$/m);
    expect(run.stdout).toContain(`measurement   ${snp.expected.fields['measurement'] as string}`);
    const neg = await runCaptured(verifyArgs(byName('snp/negative-bad-vcek-trustee')));
    expect(neg.code).toBe(1);
    expect(neg.stdout).toMatch(/^ {2}- snp\.report-signature: /m);
  });

  it('usage and I/O errors exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['evidence', 'verify'], /exactly one evidence file/],
      [['evidence', 'verify', 'a', 'b'], /exactly one evidence file/],
      [['evidence', 'verify', snp.evidenceFile, '--bogus'], /Unknown option/],
      [['evidence', 'verify', snp.evidenceFile, '--now', 'yesterday'], /--now: not an ISO 8601/],
      [['evidence', 'verify', snp.evidenceFile, '--now', '2025-02-30T00:00:00Z'], /--now/],
      [['evidence', 'verify', path.join(tmp, 'missing.bin')], /cannot read evidence file/],
      [['evidence', 'verify', snp.evidenceFile, '--cert', path.join(tmp, 'missing.der')], /cannot read certificate/],
      [['evidence', 'verify', tdx.evidenceFile, '--collateral', path.join(tmp, 'nope')], /collateral\.unreadable/],
      [['evidence', 'verify', tdx.evidenceFile, '--cert', snp.certFile!], /--cert is for SNP evidence/],
      [['evidence', 'verify', snp.evidenceFile, '--collateral', tdx.collateralDir!], /--collateral is for TDX evidence/],
      [['evidence', 'verify', snp.certFile!], /evidence\.unrecognised/],
      [['evidence', 'verify', snp.evidenceFile, '--roots', path.join(tmp, 'no-roots')], /trust\.roots-unreadable/],
      [['evidence', 'verify', snp.evidenceFile, '--sim-state', tmp], /--sim-state needs --allow-simulated/],
      // Devices and FIFOs are refused, not read (a FIFO would block, /dev/zero fill memory).
      [['evidence', 'verify', '/dev/zero'], /cannot read evidence file \/dev\/zero: not a regular file \[cli\.io\]/],
      [['evidence', 'verify', snp.evidenceFile, '--cert', '/dev/zero'], /not a regular file \[cli\.io\]/],
      [['evidence', 'appraise', snp.evidenceFile, '--policy', '/dev/zero'], /cannot read appraisal policy \/dev\/zero: ENOTREG \[policy\.unreadable\]/],
    ];
    for (const [argv, message] of cases) {
      const run = await runCaptured(argv);
      expect(run.code, argv.join(' ')).toBe(2);
      expect(run.stderr, argv.join(' ')).toMatch(message);
      expect(run.stdout).toBe('');
    }
  });

  it('chain-only: exit 0 with a warning, or 1 with --require-collateral', async () => {
    const args = ['evidence', 'verify', tdx.evidenceFile, '--now', tdx.expected.now, '--json'];
    const lenient = await runCaptured(args);
    expect(lenient.code).toBe(0);
    expect((JSON.parse(lenient.stdout) as { outcome: string }).outcome).toBe('chain-only');
    expect(lenient.stderr).toMatch(/warning: no TDX collateral/);
    const strict = await runCaptured([...args, '--require-collateral']);
    expect(strict.code).toBe(1);
    expect(strict.stderr).toMatch(/rejected: no TDX collateral/);
  });

  it('verifies an evidence package file, and lets --collateral replace its collateral', async () => {
    const file = path.join(tmp, 'tdx.json');
    await writeFile(file, encodeEvidencePackage(makeEvidencePackage({ kind: 'tdx', evidence: tdx.evidence })));
    const chainOnly = await runCaptured(['evidence', 'verify', file, '--now', tdx.expected.now, '--json']);
    expect((JSON.parse(chainOnly.stdout) as { outcome: string }).outcome).toBe('chain-only');
    const full = await runCaptured(['evidence', 'verify', file, '--now', tdx.expected.now, '--json', '--collateral', tdx.collateralDir!]);
    expect(full.code).toBe(0);
    expect(JSON.parse(full.stdout)).toMatchObject({ outcome: 'accept', tcb_status: 'UpToDate' });
  });

  it('refuses a malformed package file, naming the key', async () => {
    const file = path.join(tmp, 'bad.json');
    await writeFile(file, JSON.stringify({ kind: 'snp', evidence: Buffer.from(snp.evidence).toString('base64'), signature: 'x' }));
    const run = await runCaptured(['evidence', 'verify', file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/signature: unknown key \[evidence\.malformed\]/);
  });

  it('accepts a PEM certificate file and resolves paths against the working directory', async () => {
    const der = await readFile(snp.certFile!);
    const pem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`;
    await writeFile(path.join(tmp, 'vcek.pem'), pem);
    await writeFile(path.join(tmp, 'report.bin'), snp.evidence);
    const run = await runCaptured(['evidence', 'verify', 'report.bin', '--cert', 'vcek.pem', '--now', snp.expected.now, '--json'], tmp);
    expect(run.code, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout) as { outcome: string }).outcome).toBe('accept');
  });

  it('trusts only the roots given with --roots', async () => {
    const run = await runCaptured([...verifyArgs(snp), '--roots', path.join(repoRoot, '../shared/vectors/roots/intel'), '--json']);
    expect(run.code).toBe(1);
    expect((JSON.parse(run.stdout) as { outcome: string }).outcome).toBe('reject');
  });

  it('accepts simulated evidence only with --allow-simulated, flagged as simulated', async () => {
    const stateDir = path.join(tmp, 'sim');
    const tee = await openSimulatedTee(stateDir);
    const file = path.join(tmp, 'sim-snp.json');
    await writeFile(file, encodeEvidencePackage(await tee.snpEvidence(new Uint8Array(64).fill(1))));
    const refused = await runCaptured(['evidence', 'verify', file, '--json']);
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stdout)).toMatchObject({ outcome: 'reject', simulated: false });
    const allowed = await runCaptured(['evidence', 'verify', file, '--allow-simulated', '--sim-state', stateDir, '--json']);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(JSON.parse(allowed.stdout)).toMatchObject({ outcome: 'accept', simulated: true, tee: 'sim-snp', kind: 'snp' });
    const missing = await runCaptured(['evidence', 'verify', file, '--allow-simulated', '--sim-state', path.join(tmp, 'no-sim')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/\[sim\./);
    const human = await runCaptured(['evidence', 'verify', file, '--allow-simulated', '--sim-state', stateDir]);
    expect(human.stdout).toMatch(/^kind +snp \(SIMULATED: not genuine hardware\)$/m);
  });
});
