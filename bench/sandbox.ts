/**
 * Sandbox throughput and latency for the `transform` action against its floor, all in one
 * process on the same component (same memory-capped modules) and the same input:
 *   floor      one thread, fresh instance + call in a loop, no pool around it; each instance
 *              gets a new linear memory, as when V8 allocates it (bare instantiate + call)
 *   floor, recycled memory   the same loop handing each instance a zeroed memory from the
 *              previous one, as the pool's workers do (memory-lease.ts)
 *   floor xN   the recycled loop in N bare worker threads at once (the floor under the same CPU
 *              contention as an N-worker pool: the fair reference on a shared machine)
 *   pool x1    a one-worker pool, 4 requests in flight (per-worker overhead against the floor)
 *   pool low   one request in flight, back to back, and spaced 5 ms apart (time for the
 *              worker that just ran to pre-instantiate its next instance)
 *   pool sat   4 requests in flight per worker
 * Phases are interleaved over several rounds, each after a warm-up, so drifting background load
 * hits every phase alike. Usage:
 *   npm run bench:sandbox [-- --seconds 1 --rounds 3 --workers 2 --backend quickjs|starlingmonkey|both]
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import vm from 'node:vm';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { buildComponent } from '../src/sandbox/build.ts';
import { engineStubs } from '../src/sandbox/engine-stubs.ts';
import { type MemoryLease, MemoryLeases, memoryTypesOf } from '../src/sandbox/memory-lease.ts';
import { type LoadedComponent, SandboxPool, loadComponent } from '../src/sandbox/index.ts';
import type { ComponentPayload } from '../src/sandbox/protocol.ts';

type Instantiate = (
  get: (n: string) => WebAssembly.Module,
  imports: Record<string, unknown>,
  instantiateCore: (m: WebAssembly.Module, i: WebAssembly.Imports) => WebAssembly.Instance,
) => Record<string, { run(i: string): string }>;

/** Fresh instance + call of `payload` for `ms` milliseconds; returns latencies. */
function floorLoop(payload: ComponentPayload, input: string, ms: number, recycleMemory: boolean): number[] {
  const factory = new vm.Script(payload.factorySource).runInThisContext() as () => Instantiate;
  const stubs = engineStubs(() => undefined);
  const imports: Record<string, unknown> = {};
  for (const name of payload.imports) imports[name] = imports[name.split('@')[0]!] = stubs[name.split('@')[0]!] ?? {};
  const memory = new MemoryLeases(memoryTypesOf(payload.modules, payload.memoryImports), recycleMemory);
  const leases: MemoryLease[] = [];
  const instantiateCore = (m: WebAssembly.Module, i: WebAssembly.Imports) => new WebAssembly.Instance(m, memory.importsFor(m, i, leases));
  const lat: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const t = performance.now();
    const out = factory()((n) => payload.modules[n]!, imports, instantiateCore)['attex:action/action@0.1.0']!.run(input);
    if (typeof out !== 'string') throw new Error('floor run failed');
    memory.release(leases);
    lat.push(performance.now() - t);
  }
  return lat;
}

interface Phase { count: number; seconds: number; lat: number[] }
const phase = (): Phase => ({ count: 0, seconds: 0, lat: [] });
function add(p: Phase, lat: number[], seconds: number): void {
  p.count += lat.length;
  p.seconds += seconds;
  for (const l of lat) p.lat.push(l);
}
function pct(p: Phase, q: number): number {
  const s = p.lat.sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((q / 100) * s.length))] ?? NaN;
}
const rate = (p: Phase) => p.count / p.seconds;
const fmt = (n: number) => n.toFixed(2);

async function parallelFloor(component: LoadedComponent, input: string, threads: number, ms: number): Promise<number[][]> {
  return Promise.all(Array.from({ length: threads }, () => new Promise<number[]>((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), { workerData: { payload: component.payload, input, ms, recycleMemory: true } });
    w.once('message', (lat: number[]) => { resolve(lat); void w.terminate(); });
    w.once('error', reject);
  })));
}

async function poolPhase(pool: SandboxPool, input: string, inFlight: number, ms: number, gapMs = 0): Promise<number[]> {
  const lat: number[] = [];
  const end = performance.now() + ms;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (performance.now() < end) {
      if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
      const t = performance.now();
      const r = await pool.run('transform', input);
      if (!r.ok) throw new Error(`run failed: ${r.error?.code}`);
      lat.push(performance.now() - t);
    }
  }));
  return lat;
}

async function componentFor(root: string, backend: string): Promise<{ component: LoadedComponent; bytes: number; buildMs: number }> {
  const cacheDir = path.join(root, '.attex/cache/components');
  let dir = path.join(root, 'components/transform');
  let tmp: string | undefined;
  if (backend !== 'quickjs') {
    // Same source, other engine: the build cache is keyed by content, so this builds once.
    tmp = await mkdtemp(path.join(tmpdir(), 'attex-bench-'));
    await cp(dir, tmp, { recursive: true });
    const manifest = JSON.parse(await readFile(path.join(tmp, 'attex.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(path.join(tmp, 'attex.json'), JSON.stringify({ ...manifest, backend }));
    dir = tmp;
  }
  try {
    const built = await buildComponent(dir, { cacheDir });
    const component = await loadComponent(new Uint8Array(await readFile(built.wasmPath)), built.manifest, { cacheDir: path.join(root, '.attex/cache/transpiled') });
    return { component, bytes: built.bytes, buildMs: built.ms };
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}

async function benchBackend(root: string, backend: string, opts: { ms: number; rounds: number; workers: number }, input: string): Promise<void> {
  const { component, bytes, buildMs } = await componentFor(root, backend);
  const { ms, rounds, workers } = opts;
  const floor = phase();
  const floorRecycled = phase();
  const floorN = phase();
  const single = phase();
  const low = phase();
  const spaced = phase();
  const sat = phase();
  const pool = await SandboxPool.create({ size: workers, components: [component] });
  const pool1 = await SandboxPool.create({ size: 1, components: [component] });
  try {
    floorLoop(component.payload, input, 300, false); // warm-up of this thread
    floorLoop(component.payload, input, 300, true);
    await poolPhase(pool, input, workers * 4, 300); // warm-up of the workers
    await poolPhase(pool1, input, 4, 300);
    for (let r = 0; r < rounds; r++) {
      add(floor, floorLoop(component.payload, input, ms, false), ms / 1000);
      add(floorRecycled, floorLoop(component.payload, input, ms, true), ms / 1000);
      const perThread = await parallelFloor(component, input, workers, ms);
      add(floorN, perThread.flat(), ms / 1000);
      add(single, await poolPhase(pool1, input, 4, ms), ms / 1000);
      add(low, await poolPhase(pool, input, 1, ms), ms / 1000);
      add(spaced, await poolPhase(pool, input, 1, ms, 5), ms / 1000);
      add(sat, await poolPhase(pool, input, workers * 4, ms), ms / 1000);
    }
  } finally {
    await pool.close();
    await pool1.close();
  }
  console.log(`\n[${backend}] component transform ${component.digest.slice(0, 19)}… ${(bytes / 1048576).toFixed(1)} MiB (build ${buildMs} ms${buildMs < 1000 ? ', cached' : ''})`);
  console.log(`floor (1 thread, fresh instance + call):      ${fmt(rate(floor)).padStart(8)} /s   p50 ${fmt(pct(floor, 50))} ms  p99 ${fmt(pct(floor, 99))} ms`);
  console.log(`floor, recycled memory (1 thread):            ${fmt(rate(floorRecycled)).padStart(8)} /s   p50 ${fmt(pct(floorRecycled, 50))} ms  p99 ${fmt(pct(floorRecycled, 99))} ms`);
  console.log(`floor x${workers} recycled (bare threads, same load):  ${fmt(rate(floorN)).padStart(8)} /s   p50 ${fmt(pct(floorN, 50))} ms  p99 ${fmt(pct(floorN, 99))} ms`);
  console.log(`pool x1 saturated (1 worker, 4 in flight):    ${fmt(rate(single)).padStart(8)} /s   p50 ${fmt(pct(single, 50))} ms  p99 ${fmt(pct(single, 99))} ms`);
  console.log(`pool low load (1 in flight, back to back):    ${fmt(rate(low)).padStart(8)} /s   p50 ${fmt(pct(low, 50))} ms  p99 ${fmt(pct(low, 99))} ms`);
  console.log(`pool low load (1 in flight, 5 ms apart):      ${fmt(rate(spaced)).padStart(8)} /s   p50 ${fmt(pct(spaced, 50))} ms  p99 ${fmt(pct(spaced, 99))} ms`);
  console.log(`pool saturated (${workers} workers, ${workers * 4} in flight):      ${fmt(rate(sat)).padStart(8)} /s   p50 ${fmt(pct(sat, 50))} ms  p99 ${fmt(pct(sat, 99))} ms`);
  console.log(`ratio pool x1 / floor recycled (overhead):    ${fmt(rate(single) / rate(floorRecycled))}`);
  console.log(`ratio pool per worker / floor:                ${fmt(rate(sat) / workers / rate(floor))} (target >= 0.8)`);
  console.log(`ratio pool per worker / floor recycled:       ${fmt(rate(sat) / workers / rate(floorRecycled))}`);
  console.log(`ratio pool / floor x${workers} recycled (same load):  ${fmt(rate(sat) / rate(floorN))}`);
  console.log(`ratio floor x${workers} / floor recycled (scaling):    ${fmt(rate(floorN) / rate(floorRecycled))} of ${workers} cores`);
  console.log(`pool low-load p50 - floor p50:                ${fmt(pct(low, 50) - pct(floor, 50))} ms back to back, ${fmt(pct(spaced, 50) - pct(floor, 50))} ms spaced`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '1' },
      rounds: { type: 'string', default: '3' },
      workers: { type: 'string', default: '2' },
      backend: { type: 'string', default: 'quickjs' },
    },
  });
  const root = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
  const input = JSON.stringify({ items: Array.from({ length: 20 }, (_, i) => ({ category: `c${i % 4}`, amount: i })) });
  const opts = { ms: Number(values.seconds) * 1000, rounds: Number(values.rounds), workers: Number(values.workers) };
  const backends = values.backend === 'both' ? ['quickjs', 'starlingmonkey'] : [values.backend!];
  console.log(`load average at start: ${loadavg().map((l) => l.toFixed(2)).join(' ')} (${opts.rounds} rounds of ${values.seconds} s per phase)`);
  for (const backend of backends) await benchBackend(root, backend, opts, input);
  console.log(`\nload average at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

if (!isMainThread) {
  const { payload, input, ms, recycleMemory } = workerData as { payload: ComponentPayload; input: string; ms: number; recycleMemory: boolean };
  floorLoop(payload, input, 200, recycleMemory); // warm-up
  parentPort!.postMessage(floorLoop(payload, input, ms, recycleMemory));
} else {
  await main();
}
