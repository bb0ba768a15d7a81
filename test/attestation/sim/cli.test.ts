import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/main.ts';

const repoRoot = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const policies = path.join(repoRoot, 'attestation/policies');
let cwd: string;
const reportData = 'ab'.repeat(64);

async function attex(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await runCli(argv, { stdout, stderr, stdin: new PassThrough(), env: {}, cwd });
  return { code, stdout: out, stderr: err };
}

beforeAll(async () => {
  cwd = await mkdtemp(path.join(os.tmpdir(), 'attex-sim-cli-'));
});

afterAll(async () => {
  await rm(cwd, { recursive: true, force: true });
});

describe('attex evidence simulate / verify / appraise / collect', () => {
  it('simulate writes a package; verify accepts it only with --allow-simulated', async () => {
    const sim = await attex('evidence', 'simulate', '--kind', 'snp', '--version', '5', '--product', 'Genoa', '--report-data', reportData, '--state', 'state', '--out', 'snp.json', '--json');
    expect(sim.code).toBe(0);
    const summary = JSON.parse(sim.stdout) as { rootsDir: string; kind: string };
    expect(summary.kind).toBe('snp');
    expect(summary.rootsDir).toBe(path.join(cwd, 'state', 'sim-tee-v1', 'roots'));
    const pkg = JSON.parse(await readFile(path.join(cwd, 'snp.json'), 'utf8')) as { kind: string; certs: string[] };
    expect(pkg.kind).toBe('snp');
    expect((await readdir(cwd)).filter((n) => n.endsWith('.tmp'))).toEqual([]);

    const ok = await attex('evidence', 'verify', 'snp.json', '--allow-simulated', '--sim-state', 'state', '--json');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ outcome: 'accept', simulated: true, tee: 'sim-snp' });
    const refused = await attex('evidence', 'verify', 'snp.json', '--json');
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stdout).outcome).toBe('reject');
  });

  it('simulated TDX evidence verifies UpToDate and appraises as warning under dev-simulated, contraindicated under default', async () => {
    expect((await attex('evidence', 'simulate', '--kind', 'tdx', '--report-data', reportData, '--state', 'state', '--out', 'tdx.json')).code).toBe(0);
    const verified = await attex('evidence', 'verify', 'tdx.json', '--allow-simulated', '--sim-state', 'state', '--json');
    expect(JSON.parse(verified.stdout)).toMatchObject({ outcome: 'accept', tcb_status: 'UpToDate', tee: 'sim-tdx' });

    const dev = await attex('evidence', 'appraise', 'tdx.json', '--policy', path.join(policies, 'dev-simulated.json'), '--allow-simulated', '--sim-state', 'state', '--report-data', reportData, '--json');
    expect(dev.code).toBe(0);
    expect(JSON.parse(dev.stdout)).toMatchObject({ status: 'warning', policyId: 'attex-dev-simulated' });
    expect((await attex('evidence', 'appraise', 'tdx.json', '--policy', path.join(policies, 'dev-simulated.json'), '--allow-simulated', '--sim-state', 'state', '--require-affirming')).code).toBe(1);

    const strict = await attex('evidence', 'appraise', 'tdx.json', '--policy', path.join(policies, 'default.json'), '--allow-simulated', '--sim-state', 'state');
    expect(strict.code).toBe(1);
    expect(strict.stdout).toContain('contraindicated');
    expect(strict.stdout).toContain('appraisal.simulated');

    const wrongBinding = await attex('evidence', 'appraise', 'tdx.json', '--policy', path.join(policies, 'dev-simulated.json'), '--allow-simulated', '--sim-state', 'state', '--report-data', 'cd', '--json');
    expect(wrongBinding.code).toBe(1);
    expect(JSON.parse(wrongBinding.stdout).reasons.map((r: { code: string }) => r.code)).toContain('appraisal.report-data-mismatch');
  });

  it('appraise names a bad policy key and exits 2', async () => {
    const res = await attex('evidence', 'appraise', 'tdx.json', '--policy', path.join(repoRoot, 'package.json'));
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('policy.invalid');
  });

  it('collect with the sim provider writes verifiable evidence; with nothing available it explains what is missing', async () => {
    const res = await attex('evidence', 'collect', '--provider', 'sim', '--sim-state', 'state', '--sim-kind', 'snp', '--report-data', reportData, '--out', 'collected.json', '--json');
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ provider: 'sim', kind: 'snp' });
    expect((await attex('evidence', 'verify', 'collected.json', '--allow-simulated', '--sim-state', 'state')).code).toBe(0);

    const none = await attex('evidence', 'collect', '--configfs-root', 'no-configfs', '--tpm-device', 'no-tpm', '--report-data', reportData, '--out', 'x.json');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('provider.none');
    expect(none.stderr).toContain('--sim-state');
  });

  it('usage errors exit 2 and every sub-command has --help', async () => {
    expect((await attex('evidence', 'simulate', '--report-data', 'zz', '--out', 'y.json')).code).toBe(2);
    expect((await attex('evidence', 'simulate', '--report-data', 'ab'.repeat(65), '--out', 'y.json')).code).toBe(2);
    expect((await attex('evidence', 'simulate', '--kind', 'sgx', '--report-data', 'ab', '--out', 'y.json')).code).toBe(2);
    expect((await attex('evidence', 'collect', '--provider', 'tpm2', '--report-data', 'ab', '--out', 'y.json')).code).toBe(2);
    for (const sub of ['simulate', 'collect', 'appraise']) {
      const help = await attex('evidence', sub, '--help');
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`usage: attex evidence ${sub}`);
    }
  });
});
