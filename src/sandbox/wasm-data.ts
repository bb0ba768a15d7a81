/**
 * Fewer, larger data segments for the same initial memory.
 *
 * A toolchain that snapshots a pre-initialised engine (componentize-js runs QuickJS's start-up
 * ahead of time) writes the snapshot as one active data segment per run of non-zero bytes: 5,343
 * segments holding 206 KB in the `transform` example. V8 evaluates each segment's offset and
 * copies it at every instantiation, and the sandbox instantiates the component afresh for every
 * action, so those segments alone cost ~0.1 ms per action (docs/sandbox.md). Merged wherever
 * the gap between two segments is small, with the gap written as zeros, they are a few dozen.
 *
 * The memory an instance starts with is the same, byte for byte. Segments are merged only when:
 * - the module defines its one memory and imports none, so the memory is new and all zeros when
 *   the segments are written, and the zeros written into a gap are what was there;
 * - every segment is active, in memory 0, at an `i32.const` offset, and they come in ascending
 *   order without overlapping, so no segment overwrites another;
 * - there is no data count section: without one no instruction may name a data segment
 *   (memory.init, data.drop), so renumbering them is invisible.
 * - every segment lies within the memory's initial size (a later one would fail instantiation
 *   anyway), and the zeros added are no more than the data itself, so a module cannot make the
 *   merge blow it up;
 * - the imports parse as the kinds and one-byte types the toolchains emit; an import this reader
 *   does not know might be a memory, so the module is left alone.
 * Any other module is left as it is (`undefined`). The data-segment names of a `name` section,
 * if any, are not renumbered (debugging only). Hand-written for the same reason as wasm-memory.ts.
 */
import { concat, invalid, readU32, splitSections, writeU32, type Section } from './wasm-sections.ts';
import { WASM_PAGE } from './wasm-memory.ts';

/** Largest run of zeros written to join two segments: beyond it, a separate segment is cheaper. */
export const MAX_DATA_GAP = 256;
/** V8's limit on data segments; a module past it does not compile, merged or not. */
const MAX_SEGMENTS = 100_000;

interface Segment {
  readonly offset: number;
  readonly data: Uint8Array;
}

/** A copy of `module` with its data segments merged, and the counts before and after; or undefined. */
export function coalesceDataSegments(module: Uint8Array, maxGap = MAX_DATA_GAP): { bytes: Uint8Array; before: number; after: number } | undefined {
  const sections = splitSections(module);
  if (sections.some((s) => s.id === 12)) return undefined;
  const data = sections.filter((s) => s.id === 11);
  const memories = sections.filter((s) => s.id === 5);
  if (data.length !== 1 || memories.length !== 1) return undefined;
  const initialBytes = onlyMemoryInitialBytes(module, memories[0]!);
  if (initialBytes === undefined) return undefined;
  const imports = sections.filter((s) => s.id === 2);
  if (imports.length > 1 || (imports[0] && importsMemory(module, imports[0]) !== false)) return undefined;
  const segments = readActiveSegments(module, data[0]!);
  if (!segments || segments.length < 2 || segments.length > MAX_SEGMENTS) return undefined;
  const last = segments.at(-1)!;
  if (last.offset + last.data.length > initialBytes) return undefined;
  const dataBytes = segments.reduce((n, s) => n + s.data.length, 0);
  const merged: Segment[] = [];
  let group: Segment[] = [segments[0]!];
  const flush = () => {
    const first = group[0]!;
    const last = group.at(-1)!;
    if (group.length === 1) return void merged.push(first);
    const bytes = new Uint8Array(last.offset + last.data.length - first.offset);
    for (const s of group) bytes.set(s.data, s.offset - first.offset);
    merged.push({ offset: first.offset, data: bytes });
  };
  for (const s of segments.slice(1)) {
    const previous = group.at(-1)!;
    if (s.offset - (previous.offset + previous.data.length) <= maxGap) group.push(s);
    else {
      flush();
      group = [s];
    }
  }
  flush();
  if (merged.length === segments.length) return undefined;
  if (merged.reduce((n, s) => n + s.data.length, 0) - dataBytes > dataBytes) return undefined;
  const body = concat([Uint8Array.from(writeU32(merged.length)), ...merged.map(encodeSegment)]);
  const section = concat([Uint8Array.from([11, ...writeU32(body.length)]), body]);
  const at = data[0]!;
  return { bytes: concat([module.subarray(0, at.at), section, module.subarray(at.end)]), before: segments.length, after: merged.length };
}

/** Active memory-0 segments at constant offsets, in ascending order without overlap; or undefined. */
function readActiveSegments(module: Uint8Array, section: Section): Segment[] | undefined {
  const count = readU32(module, section.start);
  const out: Segment[] = [];
  let p = count.next;
  let end = 0;
  for (let i = 0; i < count.value; i++) {
    if (module[p] !== 0x00 || module[p + 1] !== 0x41) return undefined; // flags 0 (active, memory 0), i32.const
    const offset = readS32(module, p + 2);
    if (module[offset.next] !== 0x0b) return undefined; // a longer expression
    const length = readU32(module, offset.next + 1);
    const start = offset.value >>> 0;
    if (length.next + length.value > section.end) throw invalid('data segment runs past its section');
    if (start < end) return undefined; // out of order or overlapping: later segments win there
    out.push({ offset: start, data: module.subarray(length.next, length.next + length.value) });
    end = start + length.value;
    p = length.next + length.value;
  }
  if (p !== section.end) throw invalid('data section size mismatch');
  return out;
}

function encodeSegment(s: Segment): Uint8Array {
  return concat([Uint8Array.from([0x00, 0x41, ...writeS32(s.offset | 0), 0x0b, ...writeU32(s.data.length)]), s.data]);
}

/** The initial size in bytes of the section's one 32-bit memory; undefined for anything else. */
function onlyMemoryInitialBytes(module: Uint8Array, section: Section): number | undefined {
  const count = readU32(module, section.start);
  const flags = module[count.next];
  if (count.value !== 1 || (flags !== 0 && flags !== 1)) return undefined; // shared, 64-bit, custom pages
  return readU32(module, count.next + 1).value * WASM_PAGE;
}

/** One-byte value and reference types: i32, i64, f32, f64, v128, funcref, externref. */
const SIMPLE_TYPES = new Set([0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f]);

/**
 * Whether the import section imports a memory (kind 2); undefined when an import is encoded in a
 * way this reader does not follow (a typed reference, a 64-bit table, a kind from a later
 * proposal), since it might hide one.
 */
function importsMemory(module: Uint8Array, section: Section): boolean | undefined {
  const count = readU32(module, section.start);
  let p = count.next;
  for (let i = 0; i < count.value; i++) {
    const moduleName = readU32(module, p);
    const fieldName = readU32(module, moduleName.next + moduleName.value);
    p = fieldName.next + fieldName.value;
    const kind = module[p++];
    if (kind === 0x02) return true;
    if (kind === 0x00) p = readU32(module, p).next; // function: type index
    else if (kind === 0x01) { // table: reference type, limits without 64-bit or shared flags
      if (!SIMPLE_TYPES.has(module[p]!) || (module[p + 1] !== 0 && module[p + 1] !== 1)) return undefined;
      const min = readU32(module, p + 2);
      p = module[p + 1] === 1 ? readU32(module, min.next).next : min.next;
    } else if (kind === 0x03) { // global: value type, mutability
      if (!SIMPLE_TYPES.has(module[p]!) || (module[p + 1] !== 0 && module[p + 1] !== 1)) return undefined;
      p += 2;
    } else if (kind === 0x04 && module[p] === 0x00) p = readU32(module, p + 1).next; // tag: attribute, type index
    else return undefined;
    if (p > section.end) throw invalid('import section runs past its end');
  }
  if (p !== section.end) return undefined;
  return false;
}

/** Signed LEB128, at most 5 bytes (an i32.const operand). */
function readS32(bytes: Uint8Array, pos: number): { value: number; next: number } {
  let result = 0;
  let shift = 0;
  for (let i = 0; i < 5; i++) {
    const byte = bytes[pos + i];
    if (byte === undefined) throw invalid('truncated LEB128');
    result |= (byte & 0x7f) << shift;
    shift += 7;
    if ((byte & 0x80) === 0) {
      // A fifth byte's unused bits must repeat the sign bit (as V8's validator requires).
      if (i === 4 && (byte & 0x70) !== (byte & 0x08 ? 0x70 : 0)) throw invalid('i32 LEB128 with stray high bits');
      if (shift < 32 && byte & 0x40) result |= -1 << shift;
      return { value: result | 0, next: pos + i + 1 };
    }
  }
  throw invalid('LEB128 too long');
}

function writeS32(value: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    if ((value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}
