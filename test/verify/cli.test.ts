import { spawnSync } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandIO } from '../../src/cli/command.ts';
import { runCli } from '../../src/cli/main.ts';
import { parseVerifierKey } from '../../src/ledger/index.ts';
import { rawEd25519PublicKey, sslibKeyId } from '../../src/receipts/index.ts';
import { type World, issueReceipt, openWorld } from './world.ts';

let dir: string;
let w: World;
let bundleFile: string;
let trustFile: string;

function io(cwd: string, stdin = ''): CommandIO & { out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let o = '';
  let e = '';
  stdout.on('data', (d) => (o += d));
  stderr.on('data', (d) => (e += d));
  return { stdout, stderr, stdin: Readable.from([stdin]), env: {}, cwd, out: () => o, err: () => e };
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'attex-verify-cli-'));
  w = await openWorld(dir);
  const { text } = await issueReceipt(w);
  bundleFile = path.join(dir, 'receipt.bundle.json');
  writeFileSync(bundleFile, text);
  trustFile = path.join(dir, 'trust.json');
  writeFileSync(trustFile, JSON.stringify({ logVerifierKey: w.ledger.verifierKey, simulatedStateDir: 'sim' }));
});
afterAll(async () => {
  await w?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('attex verify', () => {
  it('exits 0 with a step-by-step summary when the bundle verifies (simulated roots allowed by flag)', async () => {
    const c = io(dir);
    expect(await runCli(['verify', 'receipt.bundle.json', '--trust', 'trust.json', '--allow-simulated'], c)).toBe(0);
    expect(c.out()).toMatch(/^attex verify: VERIFIED/);
    expect(c.out()).toMatch(/for: {4}caller agent:billing-bot/);
    expect(c.out()).toMatch(/where: {2}executor executor-a 0\.1\.0 on sim-snp SIMULATED/);
    expect(c.out().match(/✓/g)).toHaveLength(6);
  });

  it('exits 1 and names the failed step without --allow-simulated', async () => {
    const c = io(dir);
    expect(await runCli(['verify', bundleFile, '--trust', trustFile], c)).toBe(1);
    expect(c.out()).toMatch(/NOT VERIFIED/);
    expect(c.out()).toMatch(/✗ evidence +\[verify\.simulated\]/);
  });

  it('prints one JSON object with --json, and reads the bundle from stdin with -', async () => {
    const c = io(dir, readFileSync(bundleFile, 'utf8'));
    expect(await runCli(['verify', '-', '--trust', trustFile, '--allow-simulated', '--json'], c)).toBe(0);
    const json = JSON.parse(c.out());
    expect(json.verified).toBe(true);
    expect(json.steps.map((s: { step: string }) => s.step)).toEqual(['bundle', 'checkpoint', 'inclusion', 'receipt', 'attestation-record', 'evidence']);
    expect(json.receipt.executor.id).toBe('executor-a');
  });

  it('exits 1 for a truncated bundle file and 2 for usage and I/O errors', async () => {
    const truncated = path.join(dir, 'truncated.json');
    writeFileSync(truncated, readFileSync(bundleFile).subarray(0, 100));
    const c = io(dir);
    expect(await runCli(['verify', truncated, '--trust', trustFile, '--json'], c)).toBe(1);
    expect(JSON.parse(c.out()).steps[0]).toMatchObject({ step: 'bundle', ok: false, code: 'verify.bundle-malformed' });
    expect(await runCli(['verify', 'missing.json', '--trust', trustFile], io(dir))).toBe(2);
    expect(await runCli(['verify', bundleFile], io(dir))).toBe(2);
    expect(await runCli(['verify', bundleFile, '--trust', trustFile, '--bogus'], io(dir))).toBe(2);
    const badTrust = path.join(dir, 'bad-trust.json');
    writeFileSync(badTrust, JSON.stringify({ logVerifierKey: 'not a vkey' }));
    const e = io(dir);
    expect(await runCli(['verify', bundleFile, '--trust', badTrust], e)).toBe(2);
    expect(e.err()).toMatch(/verify\.trust-invalid/);
  });

  it('refuses a FIFO or a device as bundle or trust file at once (exit 2), without reading it', async () => {
    const fifo = path.join(dir, 'bundle.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    for (const args of [[fifo, '--trust', trustFile], ['/dev/zero', '--trust', trustFile], [bundleFile, '--trust', '/dev/zero'], [bundleFile, '--trust', fifo]]) {
      const c = io(dir);
      expect([args, await runCli(['verify', ...args], c)]).toEqual([args, 2]);
      expect(c.err()).toMatch(/not a regular file \[verify\.io\]/);
    }
  });
});

describe('attex keygen', () => {
  it('writes a 0600 PKCS#8 key atomically and prints public key, keyid and vkey, never the private key', async () => {
    const c = io(dir);
    expect(await runCli(['keygen', '--out', 'log.key', '--name', 'log.example/attex', '--json'], c)).toBe(0);
    const info = JSON.parse(c.out());
    const keyFile = path.join(dir, 'log.key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const pem = readFileSync(keyFile, 'utf8');
    const raw = rawEd25519PublicKey(createPrivateKey(pem));
    expect(info.publicKey).toBe(Buffer.from(raw).toString('base64'));
    expect(info.keyId).toBe(sslibKeyId(raw));
    expect(parseVerifierKey(info.vkey).name).toBe('log.example/attex');
    expect(c.out()).not.toContain('PRIVATE KEY');
    expect(c.out()).not.toContain(pem.split('\n')[1]);
    // Never overwrites a key.
    const again = io(dir);
    expect(await runCli(['keygen', '--out', 'log.key'], again)).toBe(2);
    expect(readFileSync(keyFile, 'utf8')).toBe(pem);
  });

  it('prints the private key only with --stdout and refuses to run with nowhere to keep it', async () => {
    const c = io(dir);
    expect(await runCli(['keygen', '--stdout'], c)).toBe(0);
    expect(c.out()).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+-----END PRIVATE KEY-----\n$/);
    expect(c.err()).toMatch(/securesystemslib keyid: [0-9a-f]{64}/);
    expect(await runCli(['keygen'], io(dir))).toBe(2);
    expect(await runCli(['keygen', '--stdout', '--name', 'bad name'], io(dir))).toBe(2);
  });
});

describe('the installed attex launcher (bin/attex.js)', () => {
  const bin = path.join(fileURLToPath(new URL('.', import.meta.url)), '../../bin/attex.js');
  const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8', timeout: 60_000 });

  it('runs the CLI: exit codes and output are the commands\' own', () => {
    const help = run(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: attex <command>/);
    const verified = run(['verify', bundleFile, '--trust', trustFile, '--allow-simulated']);
    expect([verified.status, verified.stdout]).toEqual([0, expect.stringMatching(/verified/i)]);
    expect(run(['verify', bundleFile, '--trust', trustFile]).status).toBe(1);
    expect(run(['verify', path.join(dir, 'no-such-bundle.json'), '--trust', trustFile]).status).toBe(2);
  });
});
