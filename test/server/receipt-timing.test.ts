/**
 * A receipt's startedAt is when a sandbox worker took the action, not when admission let it
 * through: an action queued in a worker behind a long run starts when that run ends.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asExecutionStatement, parseStatement, verifyDsse } from '../../src/receipts/index.ts';
import { type Reply, dispatch, newCaller, startTestExecutor } from './helpers.ts';

const caller = newCaller('timing');
let dir: string;
let ex: Awaited<ReturnType<typeof startTestExecutor>>;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'attex-timing-'));
  // One worker with one action queued behind its run: both actions are admitted at once.
  ex = await startTestExecutor({ dir, actions: ['transform', 'slow'], callers: [caller], limits: { poolSize: 1, workerQueueDepth: 1, workerHeapMb: 64 } });
});

afterAll(async () => {
  await ex?.close();
  await rm(dir, { recursive: true, force: true });
});

/** The times in a reply's receipt, read as a verifier reads them (signature checked). */
function times(r: Reply): { startedAt: number; finishedAt: number } {
  expect(r.status).toBe(200);
  const verified = verifyDsse(Buffer.from(String(r.body['receipt']), 'base64'), ex.executor.signer.publicKeyRaw);
  const { predicate } = asExecutionStatement(parseStatement(verified.payloadType, verified.payload));
  return { startedAt: Date.parse(predicate.startedAt), finishedAt: Date.parse(predicate.finishedAt) };
}

describe('receipt times', () => {
  it('an action queued behind a long run starts, per its receipt, when that run ends', async () => {
    const long = dispatch(ex.url, 'slow', { spins: 3_000_000 }, caller);
    await new Promise((r) => setTimeout(r, 30)); // the long run is in the worker
    const queued = await dispatch(ex.url, 'transform', { items: [{ category: 'a', amount: 1 }] }, caller);
    const first = times(await long);
    const second = times(queued);
    // Meaningful only if the long run took a while: admission let both through within ~30 ms.
    expect(first.finishedAt - first.startedAt).toBeGreaterThanOrEqual(40);
    expect(second.startedAt).toBeGreaterThanOrEqual(first.finishedAt - 2);
    expect(second.finishedAt).toBeGreaterThanOrEqual(second.startedAt);
  });
});
