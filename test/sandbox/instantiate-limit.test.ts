/**
 * A component whose instantiation never ends (its core start function loops): registering it is
 * held to a time limit, it is not deployed, and the pool keeps serving the other components.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from '@bytecodealliance/jco';
import { describe, expect, it } from 'vitest';
import { SandboxPool, loadComponent, parseManifest } from '../../src/sandbox/index.ts';
import { build, examplesDir, fixturesDir, load } from './helpers.ts';

describe('instantiation time limit', () => {
  it('a pool created with such a component fails with sandbox.instantiate-timeout', async () => {
    const loop = await load(await build(path.join(fixturesDir, 'hostile-start-loop')));
    const echo = await load(await build(path.join(examplesDir, 'wat-echo')));
    await expect(SandboxPool.create({ size: 1, components: [echo, loop] })).rejects.toMatchObject({ code: 'sandbox.instantiate-timeout' });
  });

  it('registered later, it is refused and dropped; other actions are still served', async () => {
    const loop = await load(await build(path.join(fixturesDir, 'hostile-start-loop')));
    const echo = await load(await build(path.join(examplesDir, 'wat-echo')));
    const pool = await SandboxPool.create({ size: 1, components: [echo] });
    try {
      await expect(pool.register(loop)).rejects.toMatchObject({ code: 'sandbox.instantiate-timeout' });
      expect(pool.components.has('hostile-start-loop')).toBe(false);
      expect((await pool.run('hostile-start-loop', '{}')).error?.code).toBe('sandbox.unknown-action');
      const r = await pool.run('wat-echo', '{"still":"served"}');
      expect([r.ok, r.output]).toEqual([true, '{"still":"served"}']);
      expect(pool.stats.workersReplaced).toBe(1);
    } finally {
      await pool.close();
    }
  });
});

describe('linear memories per instantiation', () => {
  it('a component instantiating one memory-defining module 32 times is stopped at 4 memories (sandbox.memory)', async () => {
    const bytes = await parse(await readFile(path.join(fixturesDir, '..', 'wat', 'many-instances.wat'), 'utf8'));
    const manifest = parseManifest({ name: 'many-instances', world: 'pure-action', limits: { timeout_ms: 5000, memory_mb: 16, max_host_calls: 0 } });
    const many = await loadComponent(bytes, manifest, { cacheDir: false });
    const echo = await load(await build(path.join(examplesDir, 'wat-echo')));
    const pool = await SandboxPool.create({ size: 1, components: [many, echo] });
    try {
      const r = await pool.run('many-instances', '{"x":1}');
      expect(r.error).toEqual({ code: 'sandbox.memory', message: 'the component defines more than 4 linear memories (memory_mb caps each)' });
      expect((await pool.run('wat-echo', '{}')).ok).toBe(true);
    } finally {
      await pool.close();
    }
  });
});
