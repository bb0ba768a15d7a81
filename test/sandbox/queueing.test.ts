/**
 * Actions queued behind a busy worker's run (SandboxPool queueDepth): they run in order, a
 * worker that goes idle takes them over from a long run, a worker killed with actions queued
 * behind it hands the ones it never started back, and host calls of an action the worker
 * started before the main thread saw the previous result are answered.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KvStore, type LoadedComponent, MemoryKvStore, SandboxPool } from '../../src/sandbox/index.ts';
import { build, buildAndLoad, examplesDir, fixturesDir, load } from './helpers.ts';

const TRANSFORM_INPUT = JSON.stringify({ items: [{ category: 'a', amount: 1 }] });
let components: LoadedComponent[];
const pools: SandboxPool[] = [];

async function createPool(size: number, queueDepth?: number): Promise<SandboxPool> {
  const pool = await SandboxPool.create({ size, components, ...(queueDepth === undefined ? {} : { queueDepth }) });
  pools.push(pool);
  return pool;
}

/** A store whose reads answer after `ms`: a run blocked in a host call for that long. */
function slowStore(ms: number): KvStore {
  const inner = new MemoryKvStore();
  return {
    get: (bucket, key) => new Promise((resolve) => setTimeout(() => resolve(inner.get(bucket, key)), ms)),
    set: (bucket, key, value) => inner.set(bucket, key, value),
    delete: (bucket, key) => inner.delete(bucket, key),
    exists: (bucket, key) => inner.exists(bucket, key),
    listKeys: (bucket, cursor) => inner.listKeys(bucket, cursor),
  };
}

beforeAll(async () => {
  const loaded = await buildAndLoad([path.join(examplesDir, 'transform'), path.join(fixturesDir, 'hostile-loop')]);
  const counter = await load(await build(path.join(examplesDir, 'kv-counter')), { limits: { timeout_ms: 2000 } });
  components = [...[...loaded.values()].map((v) => v.loaded), counter];
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

describe('actions queued behind a busy worker', () => {
  it('capacity counts the queued places; stats count queued actions as waiting', async () => {
    const pool = await createPool(1);
    expect(pool.capacity).toBe(3);
    expect((await createPool(2, 0)).capacity).toBe(2);
    const runs = [pool.run('kv-counter', '{"name":"a"}', { kv: slowStore(150) }), pool.run('transform', TRANSFORM_INPUT), pool.run('transform', TRANSFORM_INPUT), pool.run('transform', TRANSFORM_INPUT)];
    // One running, two queued in the worker, one in the pool's own queue.
    expect(pool.stats).toMatchObject({ busy: 1, queued: 3 });
    const results = await Promise.all(runs);
    expect(results.map((r) => r.ok)).toEqual([true, true, true, true]);
    expect(pool.stats).toMatchObject({ busy: 0, queued: 0 });
  });

  it('a worker that goes idle takes over what is queued behind a long run', async () => {
    const pool = await createPool(2);
    const finished: string[] = [];
    const track = (name: string, p: Promise<{ ok: boolean }>) => p.then((r) => (finished.push(name), r));
    // The long run goes to one worker, the first short one to the other; the rest are queued
    // behind both runs, two of them behind the long one.
    const runs = [
      track('long', pool.run('kv-counter', '{"name":"long"}', { kv: slowStore(600) })),
      ...[1, 2, 3, 4, 5].map((i) => track(`short${i}`, pool.run('transform', TRANSFORM_INPUT))),
    ];
    const results = await Promise.all(runs);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(finished.at(-1)).toBe('long');
    expect(pool.stats.workersReplaced).toBe(0);
  });

  it('queued actions a killed worker never started run on its replacement; their order is kept', async () => {
    const pool = await createPool(1);
    const order: number[] = [];
    const loop = pool.run('hostile-loop', '{}');
    const queued = [1, 2, 3].map((i) => pool.run('transform', JSON.stringify({ items: [{ category: `c${i}`, amount: i }] })).then((r) => (order.push(i), r)));
    const timedOut = await loop;
    expect(timedOut.error?.code).toBe('sandbox.timeout');
    const results = await Promise.all(queued);
    expect(results.map((r) => r.ok)).toEqual([true, true, true]);
    expect(results.map((r) => JSON.parse(r.output!).totals)).toEqual([{ c1: 1 }, { c2: 2 }, { c3: 3 }]);
    expect(order).toEqual([1, 2, 3]);
    expect(pool.stats.workersReplaced).toBe(1);
  });

  it('host calls of a queued action the worker started before the pool saw the previous result are answered', async () => {
    const pool = await createPool(1);
    const kv = new MemoryKvStore();
    const results = [];
    for (let round = 0; round < 5; round++) {
      const runs = Array.from({ length: 3 }, () => pool.run('kv-counter', '{"name":"n"}', { kv }));
      // Keep the main thread busy: the worker finishes the first run and starts the queued
      // ones (each makes a host call) before the pool has seen any result.
      for (const until = performance.now() + 100; performance.now() < until; );
      results.push(...(await Promise.all(runs)));
    }
    expect(results.every((r) => r.ok), JSON.stringify(results.find((r) => !r.ok)?.error)).toBe(true);
    // Each run read and wrote the counter: every count from 1 to 15 once, so none ran twice.
    expect(results.map((r) => JSON.parse(r.output!).count)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
  });
});
