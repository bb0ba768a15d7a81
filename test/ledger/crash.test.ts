import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Ledger, ed25519PrivateKeyFromSeed, openCheckpoint, verifyConsistency } from '../../src/ledger/index.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const child = path.join(here, 'fixtures/crash-child.ts');
const signer = { name: 'crash.test/log', privateKey: ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(5)) };

/** Run the appending child, SIGKILL it `killAfterMs` after it is ready, and return its complete output lines. */
function runAndKill(dir: string, run: number, killAfterMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [child, dir, String(run)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!timer && out.includes('ready')) timer = setTimeout(() => proc.kill('SIGKILL'), killAfterMs);
    });
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    proc.on('exit', (_code, sig) => {
      if (sig !== 'SIGKILL') reject(new Error(`child exited on its own: ${err}`));
      else resolve(out.split('\n').slice(0, -1)); // the last piece may be a torn line
    });
  });
}

describe('crash safety under SIGKILL', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'attex-ledger-crash-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps every acknowledged entry and stays consistent with every published checkpoint across 20 kills', async () => {
    const acked = new Map<number, string>();
    const checkpoints: string[] = [];
    let kills = 0;
    for (let run = 0; run < 20; run++) {
      const lines = await runAndKill(dir, run, 20 + Math.floor(Math.random() * 180));
      kills++;
      for (const line of lines) {
        const [kind, a, b] = line.split(' ');
        if (kind === 'ack') acked.set(Number(a), b!);
        if (kind === 'cp') checkpoints.push(Buffer.from(a!, 'base64').toString('utf8'));
      }
      const ledger = await Ledger.open(dir, { signer, checkpointInterval: 0 });
      try {
        for (const [index, digest] of acked) {
          expect(index).toBeLessThan(ledger.size);
          expect(createHash('sha256').update(await ledger.get(index)).digest('hex')).toBe(digest);
        }
        for (const note of checkpoints) {
          const { checkpoint } = openCheckpoint(note, { logVerifierKey: ledger.verifierKey });
          expect(checkpoint.size).toBeLessThanOrEqual(ledger.size);
          verifyConsistency(checkpoint.size, ledger.size, checkpoint.rootHash, ledger.rootHash(), ledger.consistencyProof(checkpoint.size));
        }
      } finally {
        await ledger.close();
      }
    }
    expect(kills).toBe(20);
    expect(acked.size).toBeGreaterThan(100);
    expect(checkpoints.length).toBeGreaterThan(5);
  }, 120_000);
});
