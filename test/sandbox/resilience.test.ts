/**
 * Limits enforced from the pool's main thread, worker loss, and the transpile cache. One worker
 * with a deliberately small JS heap, so a component can kill it for real.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KvStore, MemoryKvStore, SandboxPool, loadComponent, readTranspiled } from '../../src/sandbox/index.ts';
import { build, buildAndLoad, examplesDir, fixturesDir, load } from './helpers.ts';

let pool: SandboxPool;
const TRANSFORM_INPUT = JSON.stringify({ items: [{ category: 'a', amount: 1 }] });

/** A store whose reads never complete: the host call it answers never replies. */
const hangingStore: KvStore = {
  get: () => new Promise(() => undefined),
  set: async () => undefined,
  delete: async () => undefined,
  exists: async () => false,
  listKeys: async () => ({ keys: [] }),
};

beforeAll(async () => {
  const loaded = await buildAndLoad(['hostile-heap', 'hostile-spin', 'hostile-loop'].map((n) => path.join(fixturesDir, n)).concat(path.join(examplesDir, 'transform')));
  const counter = await load(await build(path.join(examplesDir, 'kv-counter')), { limits: { timeout_ms: 300 } });
  pool = await SandboxPool.create({
    size: 1,
    components: [...[...loaded.values()].map((v) => v.loaded), counter],
    workerResourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 8 },
  });
});

afterAll(async () => {
  await pool?.close();
});

async function expectServing(): Promise<void> {
  const r = await pool.run('transform', TRANSFORM_INPUT);
  expect(r.ok, JSON.stringify(r.error)).toBe(true);
}

describe('worker loss', () => {
  it('a worker that dies mid-action gives sandbox.worker-crashed; queued work runs on its replacement', async () => {
    const replaced = pool.stats.workersReplaced;
    const [crash, ...after] = await Promise.all([
      pool.run('hostile-heap', '{}'),
      pool.run('transform', TRANSFORM_INPUT),
      pool.run('transform', TRANSFORM_INPUT),
    ]);
    expect(crash.ok).toBe(false);
    expect(crash.error?.code).toBe('sandbox.worker-crashed');
    expect(crash.error?.message).toContain('ERR_WORKER_OUT_OF_MEMORY');
    expect(after.map((r) => r.ok)).toEqual([true, true]);
    expect(pool.stats.workersReplaced).toBe(replaced + 1);
  });

  it('the watchdog terminates a worker stuck in guest code at timeout_ms and replaces it', async () => {
    const replaced = pool.stats.workersReplaced;
    const r = await pool.run('hostile-loop', '{}');
    expect(r.error?.code).toBe('sandbox.timeout');
    expect(r.error?.message).toContain('worker replaced');
    expect(r.durationMs).toBeGreaterThanOrEqual(300);
    expect(r.durationMs).toBeLessThan(300 + 500);
    expect(pool.stats.workersReplaced).toBe(replaced + 1);
    await expectServing();
  });

  it('a host call that never replies ends the run at its deadline without losing the worker', async () => {
    const replaced = pool.stats.workersReplaced;
    const r = await pool.run('kv-counter', '{"name":"x"}', { kv: hangingStore });
    expect(r.error?.code).toBe('sandbox.timeout');
    expect(r.error?.message).toContain('host call kv.get');
    expect(r.durationMs).toBeLessThan(300 + 500);
    expect(pool.stats.workersReplaced).toBe(replaced);
    // The next run on the same worker is not confused by the abandoned call.
    const kv = new MemoryKvStore();
    const next = await pool.run('kv-counter', '{"name":"x"}', { kv });
    expect(JSON.parse(next.output!)).toEqual({ name: 'x', count: 1 });
  });

  it('cpu_ms is enforced while the guest runs, long before its wall-clock limit', async () => {
    const replaced = pool.stats.workersReplaced;
    const r = await pool.run('hostile-spin', '{}');
    expect(r.error?.code).toBe('sandbox.cpu-exceeded');
    expect(r.error?.message).toMatch(/more than 150 ms of CPU/);
    expect(r.durationMs).toBeLessThan(20_000 / 2);
    expect(pool.stats.workersReplaced).toBe(replaced + 1);
    await expectServing();
  });
});

describe('transpile cache', () => {
  it('stores transpiled output by digest, refuses a tampered entry and rewrites it', async () => {
    const built = await build(path.join(examplesDir, 'wat-echo'));
    const bytes = new Uint8Array(await readFile(built.wasmPath));
    const dir = await mkdtemp(path.join(tmpdir(), 'attex-transpiled-'));
    try {
      const first = await loadComponent(bytes, built.manifest, { cacheDir: dir });
      const [entry] = await readdir(dir);
      expect(entry).toMatch(new RegExp(`^${first.digest.slice(7)}-jco\\d`));
      const cached = await readTranspiled(dir, entry!);
      expect(cached?.exports).toContain('attex:action/action@0.1.0');

      await writeFile(path.join(dir, entry!, 'component.js'), 'globalThis.pwned = true;');
      expect(await readTranspiled(dir, entry!)).toBeUndefined();
      const again = await loadComponent(bytes, built.manifest, { cacheDir: dir });
      expect(again.payload.factorySource).toBe(first.payload.factorySource);
      expect(await readTranspiled(dir, entry!)).toBeDefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
