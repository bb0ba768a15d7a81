/**
 * Merging a module's data segments: the memory an instance starts with is byte for byte the same
 * (real QuickJS component and hand-assembled modules), and modules where merging could change
 * anything, gain nothing or blow the module up are left alone.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AttexError } from '../../src/errors/index.ts';
import { buildComponent, readTranspiled, transpileCacheKey } from '../../src/sandbox/index.ts';
import { rewriteCoreModule } from '../../src/sandbox/loader.ts';
import { coalesceDataSegments } from '../../src/sandbox/wasm-data.ts';
import { sha256, toHex } from '../../src/util/index.ts';
import { repoRoot } from '../server/helpers.ts';

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) return [...out, b];
    out.push(b | 0x80);
  }
};
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const name = (s: string) => [...uleb(s.length), ...Buffer.from(s)];

interface Seg { readonly offset?: number; readonly bytes: number[]; readonly passive?: boolean; readonly fromGlobal?: boolean }

/** A module with one exported memory of `pages` pages (or an imported one) and these data segments. */
function wasm(segs: readonly Seg[], o: { pages?: number; importMemory?: boolean; dataCount?: boolean; importGlobal?: boolean; rawImports?: number[][] } = {}): Uint8Array {
  const imports: number[][] = [...(o.rawImports ?? [])];
  if (o.importMemory) imports.push([...name('m'), ...name('mem'), 0x02, 0x00, ...uleb(1)]);
  if (o.importGlobal) imports.push([...name('m'), ...name('g'), 0x03, 0x7f, 0x00]);
  const data = segs.map((s) => s.passive
    ? [0x01, ...uleb(s.bytes.length), ...s.bytes]
    : [0x00, ...(s.fromGlobal ? [0x23, 0x00] : [0x41, ...sleb(s.offset!)]), 0x0b, ...uleb(s.bytes.length), ...s.bytes]);
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...(imports.length ? section(2, [...uleb(imports.length), ...imports.flat()]) : []),
    ...section(5, [1, 0x00, ...uleb(o.pages ?? 1)]),
    ...section(7, [1, ...name('mem'), 0x02, o.importMemory ? 1 : 0]),
    ...(o.dataCount ? section(12, uleb(segs.length)) : []),
    ...section(11, [...uleb(segs.length), ...data.flat()]),
  ]);
}

function memoryOf(bytes: Uint8Array): Uint8Array {
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
  return new Uint8Array((instance.exports.mem as WebAssembly.Memory).buffer);
}

const fill = (n: number, v: number) => Array.from({ length: n }, (_, i) => (v + i) % 251 + 1);

describe('coalesceDataSegments', () => {
  it('merges ascending segments across small gaps into the same memory', () => {
    const original = wasm([
      { offset: 16, bytes: fill(50, 1) }, { offset: 70, bytes: fill(30, 2) }, { offset: 100, bytes: [] }, { offset: 300, bytes: fill(200, 3) },
      { offset: 1000, bytes: fill(300, 4) }, { offset: 1556, bytes: fill(100, 5) }, { offset: 0x8000, bytes: fill(600, 6) }, { offset: 65535, bytes: [9] },
    ]);
    const merged = coalesceDataSegments(original)!;
    // 16..500 join (gaps 4, 0, 200); 1000 and 1556 (gap 256); 0x8000 alone; 65535 alone.
    expect(merged).toMatchObject({ before: 8, after: 4 });
    expect(Buffer.compare(Buffer.from(memoryOf(merged.bytes)), Buffer.from(memoryOf(original)))).toBe(0);
    expect(coalesceDataSegments(original, 0)).toMatchObject({ before: 8, after: 7 }); // only the touching ones
  });

  it('leaves alone segments past the initial memory, and merges that would add more zeros than data', () => {
    // Instantiation fails for these whether merged or not, so there is nothing to gain.
    for (const segs of [
      [{ offset: 65500, bytes: fill(10, 1) }, { offset: 65530, bytes: fill(7, 2) }],
      [{ offset: -8, bytes: fill(4, 1) }, { offset: -4, bytes: fill(4, 2) }], // past 4 GiB - 8
      [{ offset: 65530, bytes: fill(4, 1) }, { offset: 65537, bytes: [] }], // an empty segment just past the end
    ]) {
      expect(() => memoryOf(wasm(segs))).toThrow(WebAssembly.RuntimeError);
      expect(coalesceDataSegments(wasm(segs))).toBeUndefined();
    }
    // One byte every 200: merging would write ~200x the data as zeros.
    const sparse = wasm(Array.from({ length: 300, }, (_, i) => ({ offset: i * 200, bytes: [i % 250 + 1] })));
    expect(coalesceDataSegments(sparse)).toBeUndefined();
  });

  it('leaves alone every module where merging could change what the guest sees', () => {
    const two = [{ offset: 0, bytes: [1] }, { offset: 4, bytes: [2] }];
    expect(coalesceDataSegments(wasm([{ offset: 8, bytes: [1] }, { offset: 0, bytes: [2] }]))).toBeUndefined(); // out of order
    expect(coalesceDataSegments(wasm([{ offset: 0, bytes: [1, 2, 3] }, { offset: 2, bytes: [4] }]))).toBeUndefined(); // overlapping
    expect(coalesceDataSegments(wasm([...two, { bytes: [3], passive: true }]))).toBeUndefined();
    expect(coalesceDataSegments(wasm(two, { dataCount: true }))).toBeUndefined(); // code may name segments
    expect(coalesceDataSegments(wasm(two, { importMemory: true }))).toBeUndefined(); // not a new memory
    expect(coalesceDataSegments(wasm([{ offset: 0, bytes: [1] }, { bytes: [2], fromGlobal: true }], { importGlobal: true }))).toBeUndefined();
    expect(coalesceDataSegments(wasm([{ offset: 0, bytes: [1] }]))).toBeUndefined(); // nothing to merge
    expect(coalesceDataSegments(wasm([{ offset: 0, bytes: [1] }, { offset: 1000, bytes: [2] }]))).toBeUndefined();
  });

  it('leaves alone a module whose imports it cannot read through, which might hide a memory', () => {
    const two = [{ offset: 0, bytes: [1, 2, 3, 4] }, { offset: 6, bytes: [5, 6, 7, 8] }];
    expect(coalesceDataSegments(wasm(two))).toMatchObject({ after: 1 });
    const g = [...name('m'), ...name('g')];
    const t = [...name('m'), ...name('t')];
    expect(coalesceDataSegments(wasm(two, { rawImports: [[...g, 0x03, 0x7f, 0x00]] }))).toMatchObject({ after: 1 }); // an i32 global is read through
    for (const raw of [
      [...g, 0x03, 0x63, 0x70, 0x00], // global of type (ref null func): two bytes
      [...t, 0x01, 0x63, 0x70, 0x00, 0x01], // table of typed references
      [...t, 0x01, 0x70, 0x04, 0x01], // 64-bit table limits
      [...g, 0x05, 0x00], // an import kind from a later proposal
    ]) {
      expect(coalesceDataSegments(wasm(two, { rawImports: [raw] }))).toBeUndefined();
    }
  });

  it('refuses a malformed data section with sandbox.invalid-component', () => {
    // An i32.const offset whose fifth LEB byte has stray high bits (V8 refuses the module too).
    const stray = Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...section(5, [1, 0x00, 1]),
      ...section(11, [2, 0x00, 0x41, 0x80, 0x80, 0x80, 0x80, 0x10, 0x0b, 1, 7, 0x00, 0x41, 8, 0x0b, 1, 8])]);
    expect(WebAssembly.validate(stray)).toBe(false);
    expect(() => coalesceDataSegments(stray)).toThrow(expect.objectContaining({ code: 'sandbox.invalid-component' }));
    const good = wasm([{ offset: 0, bytes: [1, 2] }, { offset: 4, bytes: [3] }]);
    const lengthAt = good.length - 2; // the second segment's length byte
    const bad = Uint8Array.from(good);
    bad[lengthAt] = 0x7f;
    const err = (() => { try { coalesceDataSegments(bad); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(AttexError);
    expect((err as AttexError).code).toBe('sandbox.invalid-component');
  });

  it('merges the QuickJS snapshot of a real component without changing its memory', async () => {
    const built = await buildComponent(path.join(repoRoot, 'components/transform'), { cacheDir: path.join(repoRoot, '.attex/cache/components') });
    const bytes = new Uint8Array(await readFile(built.wasmPath));
    const { loadComponent } = await import('../../src/sandbox/index.ts');
    await loadComponent(bytes, built.manifest, { cacheDir: path.join(repoRoot, '.attex/cache/transpiled') }); // fills the transpile cache
    const transpiled = (await readTranspiled(path.join(repoRoot, '.attex/cache/transpiled'), transpileCacheKey(toHex(sha256(bytes)))))!;
    const [moduleName, original] = Object.entries(transpiled.modules).find(([, m]) => coalesceDataSegments(m) !== undefined)!;
    const merged = coalesceDataSegments(original)!;
    expect(merged.before).toBeGreaterThan(1000);
    expect(merged.after).toBeLessThan(100);
    const instantiate = (m: Uint8Array) => {
      const module = new WebAssembly.Module(m);
      const imports: Record<string, Record<string, unknown>> = {};
      for (const i of WebAssembly.Module.imports(module)) (imports[i.module] ??= {})[i.name] = () => 0;
      const memory = Object.values(new WebAssembly.Instance(module, imports as WebAssembly.Imports).exports).find((e) => e instanceof WebAssembly.Memory) as WebAssembly.Memory;
      return Buffer.from(memory.buffer);
    };
    expect(Buffer.compare(instantiate(merged.bytes), instantiate(original)), moduleName).toBe(0);
    // The loader's rewrite of each core module does the merge.
    expect(rewriteCoreModule(original, 512).dataSegments).toEqual({ before: merged.before, after: merged.after });
  });
});
