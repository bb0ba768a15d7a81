/**
 * Sandbox throughput and latency for the `transform` action, against the floor: a bare
 * instantiate + call of the same component in one thread with no pool around it.
 * Usage: npm run bench:sandbox [-- --seconds 3 --workers 2]
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import vm from 'node:vm';
import { buildComponent } from '../src/sandbox/build.ts';
import { engineStubs } from '../src/sandbox/engine-stubs.ts';
import { SandboxPool, loadComponent } from '../src/sandbox/index.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, workers: { type: 'string', default: '2' } } });
const seconds = Number(values.seconds);
const workers = Number(values.workers);
const root = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const input = JSON.stringify({ items: Array.from({ length: 20 }, (_, i) => ({ category: `c${i % 4}`, amount: i })) });

const built = await buildComponent(path.join(root, 'components/transform'), { cacheDir: path.join(root, '.attex/cache/components') });
const component = await loadComponent(new Uint8Array(await readFile(built.wasmPath)), built.manifest);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

// Floor: fresh instance + call, same thread, same memory-capped modules.
type Instantiate = (get: (n: string) => WebAssembly.Module, imports: Record<string, unknown>) => Record<string, { run(i: string): string }>;
const factory = new vm.Script(component.payload.factorySource).runInThisContext() as () => Instantiate;
const stubs = engineStubs(() => undefined);
const imports: Record<string, unknown> = {};
for (const name of component.imports) imports[name] = imports[name.split('@')[0]!] = stubs[name.split('@')[0]!] ?? {};
const floorLat: number[] = [];
const floorEnd = performance.now() + seconds * 1000;
while (performance.now() < floorEnd) {
  const t = performance.now();
  const exports = factory()((n) => component.payload.modules[n]!, imports);
  exports['attex:action/action@0.1.0']!.run(input);
  floorLat.push(performance.now() - t);
}
floorLat.sort((a, b) => a - b);
const floorRate = floorLat.length / seconds;

const pool = await SandboxPool.create({ size: workers, components: [component] });
for (let i = 0; i < 50; i++) await pool.run('transform', input);

// Low load: one request at a time.
const lowLat: number[] = [];
const lowEnd = performance.now() + seconds * 1000;
while (performance.now() < lowEnd) {
  const t = performance.now();
  await pool.run('transform', input);
  lowLat.push(performance.now() - t);
}
lowLat.sort((a, b) => a - b);

// Saturation: 4 requests in flight per worker.
const satLat: number[] = [];
let done = 0;
const satEnd = performance.now() + seconds * 1000;
await Promise.all(Array.from({ length: workers * 4 }, async () => {
  while (performance.now() < satEnd) {
    const t = performance.now();
    const r = await pool.run('transform', input);
    if (!r.ok) throw new Error(`run failed: ${r.error?.code}`);
    satLat.push(performance.now() - t);
    done++;
  }
}));
satLat.sort((a, b) => a - b);
await pool.close();

const satRate = done / seconds;
const fmt = (n: number) => n.toFixed(2);
console.log(`component transform ${component.digest.slice(0, 19)}… (${built.bytes} bytes, backend ${built.manifest.backend})`);
console.log(`floor (1 thread, fresh instance + call): ${fmt(floorRate)} actions/s, p50 ${fmt(percentile(floorLat, 50))} ms, p99 ${fmt(percentile(floorLat, 99))} ms`);
console.log(`pool low load (1 in flight):            ${fmt(lowLat.length / seconds)} actions/s, p50 ${fmt(percentile(lowLat, 50))} ms, p99 ${fmt(percentile(lowLat, 99))} ms`);
console.log(`pool saturated (${workers} workers, ${workers * 4} in flight): ${fmt(satRate)} actions/s, p50 ${fmt(percentile(satLat, 50))} ms, p99 ${fmt(percentile(satLat, 99))} ms`);
console.log(`ratio pool throughput per worker / floor: ${fmt(satRate / workers / floorRate)} (target >= 0.8)`);
