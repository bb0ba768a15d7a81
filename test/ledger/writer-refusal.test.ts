/**
 * The group-commit writer's refusal hook (a ledger that lost its directory lock): batches it
 * refuses fail with its error and write nothing; the writer stays usable once it stops refusing.
 */
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttexError } from '../../src/errors/index.ts';
import { GroupCommitWriter, RECORD_ENTRY, encodeRecord } from '../../src/ledger/sequence.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'attex-writer-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('GroupCommitWriter refusal', () => {
  it('refuses whole batches queued before it started refusing, writing nothing', async () => {
    const file = await open(path.join(dir, 'seq'), 'w+');
    try {
      let refusing = false;
      const refusal = new AttexError('ledger.lock-lost', 'refused for the test');
      const durable: number[] = [];
      const writer = new GroupCommitWriter(file, 0, (offsets) => durable.push(...offsets), undefined, () => (refusing ? refusal : undefined));
      const record = (n: number) => encodeRecord(RECORD_ENTRY, new TextEncoder().encode(`{"n":${n}}`));
      expect(await writer.append(record(0))).toBe(0);
      const size = (await stat(path.join(dir, 'seq'))).size;
      // Queued in one tick, flushed after the refusal began.
      const queued = [writer.append(record(1)), writer.append(record(2))];
      refusing = true;
      for (const q of queued) await expect(q).rejects.toBe(refusal);
      expect((await stat(path.join(dir, 'seq'))).size).toBe(size);
      expect(durable).toEqual([0]);
      refusing = false;
      expect(await writer.append(record(3))).toBe(size);
      expect(durable).toEqual([0, size]);
    } finally {
      await file.close();
    }
  });
});
