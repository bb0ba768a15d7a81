/** Strict text encodings used by the C2SP formats: canonical standard base64 and plain decimals. */
import { AttexError } from '../errors/index.ts';

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Canonical RFC 4648 section 4 base64 (with padding), or null. Node's own decoder is lenient, so re-encode and compare. */
export function fromBase64Strict(text: string): Uint8Array | null {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) return null;
  return new Uint8Array(bytes);
}

/** ASCII decimal, no sign, no leading zeros, at most 2^53 - 1; else throws `code`. */
export function parseDecimal(text: string, code: string, what: string): number {
  if (!/^(0|[1-9][0-9]*)$/.test(text)) throw new AttexError(code, `${what}: ${JSON.stringify(text.slice(0, 40))} is not a decimal without leading zeros`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new AttexError(code, `${what}: ${text.slice(0, 40)} is out of range`);
  return n;
}

/** A 32-byte hash as canonical base64, or throws `code`. */
export function parseHashLine(text: string, code: string, what: string): Uint8Array {
  const bytes = fromBase64Strict(text);
  if (!bytes || bytes.length !== 32) throw new AttexError(code, `${what}: not the canonical base64 of a 32-byte hash`);
  return bytes;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decode UTF-8 strictly (hostile input), or throw `code`. */
export function decodeUtf8(bytes: Uint8Array, code: string, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new AttexError(code, `${what} is not valid UTF-8`);
  }
}
