import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.ts';
import { Ledger, verifyTlogProof } from '../../src/ledger/index.ts';

function io(cwd: string) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  return { io: { stdout, stderr, stdin: new PassThrough(), env: {}, cwd }, out: () => out, err: () => err };
}

describe('attex ledger', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'attex-ledger-cli-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const { privateKey } = generateKeyPairSync('ed25519');
  const keyFile = path.join(work, 'log.pem');
  writeFileSync(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }));
  const executor = generateKeyPairSync('ed25519');
  writeFileSync(path.join(work, 'executor.pub'), executor.publicKey.export({ format: 'pem', type: 'spki' }));

  it('info, checkpoint, proof and export work on a real ledger; bad input exits 2', async () => {
    const ledger = await Ledger.open(path.join(work, 'l'), { signer: { name: 'cli.test/log', privateKey }, checkpointInterval: 0 });
    for (let i = 0; i < 5; i++) await ledger.append(new TextEncoder().encode(`{"i":${i}}`));
    const vkey = ledger.verifierKey;
    await ledger.close();

    let c = io(work);
    expect(await runCli(['ledger', 'info', '--ledger', 'l', '--json'], c.io)).toBe(0);
    expect(JSON.parse(c.out())).toMatchObject({ origin: 'cli.test/log', size: 5, signers: ['cli.test/log'] });

    c = io(work);
    expect(await runCli(['ledger', 'proof', '3', '--ledger', 'l', '--key', keyFile], c.io)).toBe(0);
    expect(verifyTlogProof(c.out(), new TextEncoder().encode('{"i":3}'), { logVerifierKey: vkey }).index).toBe(3);

    c = io(work);
    expect(await runCli(['ledger', 'export', 'out', '--ledger', 'l', '--key', keyFile, '--executor-pub', 'executor.pub', '--json'], c.io)).toBe(0);
    expect(JSON.parse(c.out())).toMatchObject({ size: 5 });
    expect(existsSync(path.join(work, 'out/receipts/4.tlog-proof'))).toBe(true);

    c = io(work);
    expect(await runCli(['ledger', 'proof', '9', '--ledger', 'l', '--key', keyFile], c.io)).toBe(2);
    expect(c.err()).toMatch(/ledger.not-found/);
    c = io(work);
    expect(await runCli(['ledger', 'proof', '01', '--ledger', 'l'], c.io)).toBe(2);
    c = io(work);
    expect(await runCli(['ledger', 'info', '--ledger', 'missing'], c.io)).toBe(2);
    c = io(work);
    expect(await runCli(['ledger', 'export', '--help'], c.io)).toBe(0);
    expect(c.out()).toMatch(/--since-size/);
  });

  it('refuses a ledger another holder has open (its write in progress would look like a torn tail)', async () => {
    const ledger = await Ledger.open(path.join(work, 'held'), { signer: { name: 'cli.test/log', privateKey }, checkpointInterval: 0, lock: {} });
    try {
      for (let i = 0; i < 3; i++) await ledger.append(new TextEncoder().encode(`{"i":${i}}`));
      await ledger.publishCheckpoint();
      const seq = readFileSync(path.join(work, 'held', 'seq'));
      for (const args of [['proof', '1'], ['export', 'held-out', '--executor-pub', 'executor.pub']]) {
        const c = io(work);
        expect(await runCli(['ledger', ...args, '--ledger', 'held', '--key', keyFile], c.io)).toBe(2);
        expect(c.err()).toMatch(/in use by another process.*\[ledger\.locked\]/);
      }
      expect(readFileSync(path.join(work, 'held', 'seq')).equals(seq)).toBe(true);
      expect(existsSync(path.join(work, 'held-out'))).toBe(false);
      // The holder still appends; once it closes, the CLI opens the ledger.
      await ledger.append(new TextEncoder().encode('{"i":3}'));
    } finally {
      await ledger.close();
    }
    const c = io(work);
    // --key, like --ledger, is relative to the command's working directory.
    expect(await runCli(['ledger', 'proof', '3', '--ledger', 'held', '--key', path.basename(keyFile)], c.io)).toBe(0);
  });
});
