/**
 * The idempotency table is bounded, but an entry whose run is still in flight is the only thing
 * that stops a retry from running the action again (the log learns the key only with the
 * receipt): eviction may drop finished results, never runs in flight.
 */
import { describe, expect, it } from 'vitest';
import { IdempotencyTable } from '../../src/server/idempotency.ts';
import type { DispatchResult } from '../../src/server/service.ts';

const result = (id: string, output: unknown): DispatchResult => ({ invocationId: id, outcome: 'ok', output, receipt: 'r'.repeat(100), logIndex: 1, proof: 'p', replayed: false });

describe('IdempotencyTable', () => {
  it('evicts finished results to stay in bounds, never a run in flight', async () => {
    const table = new IdempotencyTable(2, 1 << 20);
    table.begin('in-flight', 'transform', 'aa', new Promise<DispatchResult>(() => undefined));
    for (const id of ['a', 'b', 'c', 'd']) {
      table.begin(id, 'transform', 'bb', Promise.resolve(result(id, { n: id })));
      await new Promise((r) => setImmediate(r));
    }
    expect(table.get('in-flight')?.action).toBe('transform');
    expect(table.get('a')).toBeUndefined();
    expect(table.get('d')?.inputDigest).toBe('bb');
  });

  it('keeps a finished output as its JSON text, the size it is charged for, and gives it back as sent', async () => {
    const table = new IdempotencyTable();
    const output = Array.from({ length: 1000 }, () => ({}));
    const first = result('many', output);
    table.begin('many', 'wat-echo', 'dd', Promise.resolve(first));
    await new Promise((r) => setImmediate(r));
    const replayed = await table.get('many')!.result;
    // Not the object the run produced (a thousand small objects weigh many times their text)...
    expect(replayed.output).not.toBe(output);
    // ...but equal to it, members in the response's order.
    expect(replayed).toEqual(first);
    expect(Object.keys(replayed)).toEqual(Object.keys(first));
    expect(JSON.stringify(replayed)).toBe(JSON.stringify(first));
  });

  it('bytes count too: a flood of large finished results cannot push out a run in flight', async () => {
    const table = new IdempotencyTable(100_000, 10_000);
    table.begin('in-flight', 'slow', 'aa', new Promise<DispatchResult>(() => undefined));
    for (let i = 0; i < 50; i++) {
      table.begin(`big-${i}`, 'wat-echo', 'cc', Promise.resolve(result(`big-${i}`, 'x'.repeat(5_000))));
      await new Promise((r) => setImmediate(r));
    }
    expect(table.get('in-flight')).toBeDefined();
    expect(table.get('big-0')).toBeUndefined();
    expect(table.get('big-49')).toBeDefined();
  });
});
