/**
 * Rewrites of a core WebAssembly module's memory before compiling.
 *
 * capModuleMemory caps linear memory by rewriting the maximum in the memory section. Worker
 * resourceLimits do not bound wasm memory; a declared maximum does, and memory.grow past it
 * fails inside the guest instead of exhausting the host.
 *
 * importDefinedMemory turns a module's single defined memory into an import of the same type, so
 * the host can hand each fresh instance a zeroed memory it already owns (memory-lease.ts) instead
 * of V8 reserving, faulting in and unmapping a new one per instance. Hand-written: no maintained
 * JS library edits wasm sections without pulling in a whole toolchain, and both rewrites only
 * touch the import and memory sections.
 */
import { AttexError } from '../errors/index.ts';
import { SandboxCodes } from './errors.ts';
import { concat, invalid, readU32, splitSections, writeU32 } from './wasm-sections.ts';

export const WASM_PAGE = 65536;

/**
 * Returns a copy of `module` whose defined memories have maximum <= maxPages. Throws
 * `sandbox.memory` when a memory's minimum already exceeds the cap, and
 * `sandbox.invalid-component` for malformed input or 64-bit / custom-page memories.
 */
export function capModuleMemory(module: Uint8Array, maxPages: number): { bytes: Uint8Array; memories: number } {
  if (module.length < 8 || module[0] !== 0 || module[1] !== 0x61 || module[2] !== 0x73 || module[3] !== 0x6d) {
    throw invalid('bad magic');
  }
  if (module[4] !== 1 || module[5] !== 0 || module[6] !== 0 || module[7] !== 0) throw invalid('not a core module (version 1)');
  const out: Uint8Array[] = [module.subarray(0, 8)];
  let memories = 0;
  for (const { id, start, end, at } of splitSections(module)) {
    if (id === 4) {
      out.push(capTables(module, start, end));
      continue;
    }
    if (id !== 5) {
      out.push(module.subarray(at, end));
      continue;
    }
    const count = readU32(module, start);
    const body: number[] = [...writeU32(count.value)];
    let p = count.next;
    for (let i = 0; i < count.value; i++) {
      const flags = module[p];
      if (flags === undefined || flags > 3) throw invalid(`unsupported memory flags ${String(flags)}`);
      const min = readU32(module, p + 1);
      let max: number | undefined;
      p = min.next;
      if (flags & 1) {
        const m = readU32(module, p);
        max = m.value;
        p = m.next;
      }
      if (min.value > maxPages) {
        throw new AttexError(SandboxCodes.memory, `initial memory ${min.value} pages exceeds the cap of ${maxPages} pages`);
      }
      const capped = Math.min(max ?? maxPages, maxPages);
      body.push(flags | 1, ...writeU32(min.value), ...writeU32(capped));
      memories++;
    }
    if (p !== end) throw invalid('memory section size mismatch');
    out.push(Uint8Array.from([5, ...writeU32(body.length), ...body]));
  }
  return { bytes: concat(out), memories };
}

/**
 * Tables are host memory too (V8 keeps a dispatch entry per slot): each defined table's maximum
 * is rewritten to at most MAX_TABLE_ENTRIES (toolchain output has a few hundred to ~8,000), and
 * one that starts larger is refused. Returns the rewritten table section.
 */
export const MAX_TABLE_ENTRIES = 100_000;

function capTables(module: Uint8Array, start: number, end: number): Uint8Array {
  const count = readU32(module, start);
  const body: number[] = [...writeU32(count.value)];
  let p = count.next;
  for (let i = 0; i < count.value; i++) {
    const refType = module[p];
    if (refType !== 0x70 && refType !== 0x6f) throw invalid(`unsupported table type ${String(refType)}`);
    const flags = module[p + 1];
    if (flags !== 0 && flags !== 1) throw invalid(`unsupported table limits flags ${String(flags)}`);
    const min = readU32(module, p + 2);
    p = min.next;
    let max: number | undefined;
    if (flags === 1) {
      const m = readU32(module, p);
      max = m.value;
      p = m.next;
    }
    if (min.value > MAX_TABLE_ENTRIES) {
      throw new AttexError(SandboxCodes.memory, `a table of ${min.value} entries exceeds the cap of ${MAX_TABLE_ENTRIES}`);
    }
    body.push(refType, 1, ...writeU32(min.value), ...writeU32(Math.min(max ?? MAX_TABLE_ENTRIES, MAX_TABLE_ENTRIES)));
  }
  if (p !== end) throw invalid('table section size mismatch');
  return Uint8Array.from([4, ...writeU32(body.length), ...body]);
}

/** Module and field name of the import that replaces a module's own memory. */
export const MEMORY_IMPORT = { module: 'attex:memory', name: 'memory' } as const;

export interface MemoryType {
  readonly initial: number;
  readonly maximum: number;
}

function nameBytes(name: string): number[] {
  const bytes = new TextEncoder().encode(name);
  return [...writeU32(bytes.length), ...bytes];
}

/**
 * Returns a copy of `module` (already capped: its memories have a maximum) whose one defined,
 * unshared 32-bit memory is imported as MEMORY_IMPORT instead, with the same limits, and that
 * memory's type; or `undefined` when the module defines no memory or more than one (left as is).
 * The import is appended last among the imports, so it takes the defined memory's index.
 */
export function importDefinedMemory(module: Uint8Array): { bytes: Uint8Array; memory: MemoryType } | undefined {
  const sections = splitSections(module);
  // Refuse what the rewrite could otherwise silently repair: repeated or misplaced sections.
  if (sections.filter((s) => s.id === 2).length > 1 || sections.filter((s) => s.id === 5).length > 1) throw invalid('repeated section');
  const firstOther = sections.findIndex((s) => s.id !== 0 && s.id !== 1 && s.id !== 2);
  if (firstOther >= 0 && sections.slice(firstOther).some((s) => s.id === 1 || s.id === 2)) throw invalid('sections out of order');
  const memorySection = sections.find((s) => s.id === 5);
  if (!memorySection) return undefined;
  const count = readU32(module, memorySection.start);
  if (count.value !== 1) return undefined;
  const flags = module[count.next];
  if (flags !== 1) return undefined; // no maximum (not capped) or shared: keep V8's own memory
  const min = readU32(module, count.next + 1);
  const max = readU32(module, min.next);
  if (max.next !== memorySection.end) throw invalid('memory section size mismatch');
  const entry = [...nameBytes(MEMORY_IMPORT.module), ...nameBytes(MEMORY_IMPORT.name), 0x02, flags, ...writeU32(min.value), ...writeU32(max.value)];
  const importSection = sections.find((s) => s.id === 2);
  const n = importSection ? readU32(module, importSection.start) : undefined;
  const importBody = concat([
    Uint8Array.from(writeU32((n?.value ?? 0) + 1)),
    importSection && n ? module.subarray(n.next, importSection.end) : new Uint8Array(0),
    Uint8Array.from(entry),
  ]);
  const chunks: Uint8Array[] = [module.subarray(0, 8)];
  const importBytes = concat([Uint8Array.from([2, ...writeU32(importBody.length)]), importBody]);
  let placed = false;
  for (const s of sections) {
    if (s.id === 5) continue;
    if (s.id === 2 || (!placed && s.id !== 0 && s.id !== 1)) {
      if (!placed) chunks.push(importBytes);
      placed = true;
      if (s.id === 2) continue;
    }
    chunks.push(module.subarray(s.at, s.end));
  }
  if (!placed) chunks.push(importBytes);
  return { bytes: concat(chunks), memory: { initial: min.value, maximum: max.value } };
}
