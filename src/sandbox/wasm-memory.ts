/**
 * Caps the linear memory of a core WebAssembly module by rewriting the maximum in its memory
 * section before compiling. Worker resourceLimits do not bound wasm memory; a declared maximum
 * does, and memory.grow past it fails inside the guest instead of exhausting the host.
 */
import { AttexError } from '../errors/index.ts';
import { SandboxCodes } from './errors.ts';

export const WASM_PAGE = 65536;

function readU32(bytes: Uint8Array, pos: number): { value: number; next: number } {
  let result = 0;
  let shift = 0;
  for (let i = 0; i < 5; i++) {
    const byte = bytes[pos + i];
    if (byte === undefined) throw invalid('truncated LEB128');
    result += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) {
      if (result > 0xffffffff) throw invalid('LEB128 overflow');
      return { value: result, next: pos + i + 1 };
    }
    shift += 7;
  }
  throw invalid('LEB128 too long');
}

function writeU32(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

function invalid(message: string): AttexError {
  return new AttexError(SandboxCodes.invalidComponent, `core module: ${message}`);
}

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
  const out: number[] = Array.from(module.subarray(0, 8));
  let pos = 8;
  let memories = 0;
  while (pos < module.length) {
    const id = module[pos]!;
    const size = readU32(module, pos + 1);
    const start = size.next;
    const end = start + size.value;
    if (end > module.length) throw invalid('section runs past the end');
    if (id !== 5) {
      for (let i = pos; i < end; i++) out.push(module[i]!);
      pos = end;
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
    out.push(5, ...writeU32(body.length), ...body);
    pos = end;
  }
  return { bytes: Uint8Array.from(out), memories };
}
