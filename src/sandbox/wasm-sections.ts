/**
 * The few pieces of the WebAssembly binary format the module rewrites need (wasm-memory.ts,
 * wasm-data.ts): LEB128 integers and the section list. Every read is bounds-checked; malformed
 * input is `sandbox.invalid-component`.
 */
import { AttexError } from '../errors/index.ts';
import { SandboxCodes } from './errors.ts';

export function readU32(bytes: Uint8Array, pos: number): { value: number; next: number } {
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

export function writeU32(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

export function invalid(message: string): AttexError {
  return new AttexError(SandboxCodes.invalidComponent, `core module: ${message}`);
}

export interface Section {
  readonly id: number;
  readonly start: number;
  readonly end: number;
  /** Offset of the section id byte. */
  readonly at: number;
}

export function splitSections(module: Uint8Array): Section[] {
  const out: Section[] = [];
  let pos = 8;
  while (pos < module.length) {
    const size = readU32(module, pos + 1);
    const end = size.next + size.value;
    if (end > module.length) throw invalid('section runs past the end');
    out.push({ id: module[pos]!, start: size.next, end, at: pos });
    pos = end;
  }
  return out;
}

export function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

