import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Ledger, createCosigner, ed25519PrivateKeyFromSeed, exportLedger } from '../../src/ledger/index.ts';
import { IN_TOTO_PAYLOAD_TYPE, STATEMENT_TYPE_V1, createReceiptSigner, encodeStatement, signDsse } from '../../src/receipts/index.ts';

const repoRoot = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const runSh = path.resolve(repoRoot, '../shared/interop/run.sh');
const hex = (s: string) => createHash('sha256').update(s).digest('hex');

describe('export checked by the independent interop tools (Go x/mod sumdb + securesystemslib)', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'attex-ledger-interop-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('1,000 DSSE receipts, several checkpoints, a consistency proof and a witness pass run.sh -require-witness', async () => {
    const executor = createReceiptSigner(ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(11)));
    const ledger = await Ledger.open(path.join(work, 'ledger'), {
      signer: { name: 'interop.test/attex-log', privateKey: ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(12)) },
      witnesses: [createCosigner('interop.test/witness', ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(13)), () => new Date(1_790_000_000_000))],
      checkpointInterval: 0,
    });
    for (let i = 0; i < 1000; i++) {
      const statement = {
        _type: STATEMENT_TYPE_V1,
        subject: [{ name: `action/${i}/output`, digest: { sha256: hex(`output ${i}`) } }],
        predicateType: 'https://attex.dev/test/interop/v1',
        predicate: { invocationId: `inv-${i}`, input: { sha256: hex(`input ${i}`) } },
      } as const;
      const envelope = signDsse(IN_TOTO_PAYLOAD_TYPE, encodeStatement(statement), executor);
      await ledger.append(envelope, { key: `inv-${i}` });
      if (i + 1 === 100 || i + 1 === 517) await ledger.publishCheckpoint();
    }
    const out = path.join(work, 'export');
    const result = await exportLedger(ledger, out, { executorPublicKey: executor.publicKeyRaw, sinceSize: 517, proofCheckpoint: 'earliest' });
    await ledger.close();
    expect(result.size).toBe(1000);

    const run = spawnSync('bash', [runSh, '-require-witness', out], { encoding: 'utf8', timeout: 300_000 });
    const lines = run.stdout.trim().split('\n');
    if (run.status !== 0) console.error(run.stdout.split('\n').filter((l) => l.startsWith('FAIL')).slice(0, 20).join('\n'), run.stderr);
    expect(run.status).toBe(0);
    expect(lines.at(-1)).toMatch(/^\d+ passed, 0 failed$/);
    expect(run.stdout).toMatch(/consistency: 517 -> 1000/);
  }, 300_000);
});
