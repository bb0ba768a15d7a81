/**
 * Base64 without Buffer, so the verification path also runs in browsers. Encoding is standard
 * base64 with padding. Decoding is strict: standard or URL-safe alphabet (DSSE allows both),
 * padding optional but, when present, correct; no whitespace; unused trailing bits must be zero,
 * so every byte string has exactly one accepted text per alphabet/padding choice.
 */
const STD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const DECODE = new Int16Array(128).fill(-1);
for (let i = 0; i < 64; i++) DECODE[STD.charCodeAt(i)] = i;
DECODE['-'.charCodeAt(0)] = 62;
DECODE['_'.charCodeAt(0)] = 63;

// Node's native encoder when present (same standard padded output); the loop below elsewhere.
const NodeBuffer = (globalThis as { Buffer?: { from(b: ArrayBufferLike, offset: number, length: number): { toString(enc: 'base64'): string } } }).Buffer;

export function encodeBase64(bytes: Uint8Array): string {
  if (NodeBuffer !== undefined) return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  return encodeBase64Portable(bytes);
}

export function encodeBase64Portable(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += STD[n >>> 18]! + STD[(n >>> 12) & 63]! + STD[(n >>> 6) & 63]! + STD[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += `${STD[n >>> 18]!}${STD[(n >>> 12) & 63]!}==`;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += `${STD[n >>> 18]!}${STD[(n >>> 12) & 63]!}${STD[(n >>> 6) & 63]!}=`;
  }
  return out;
}

/** Strict decode; returns null for anything that is not base64 of whole bytes. */
export function decodeBase64(text: string): Uint8Array | null {
  let end = text.length;
  if (end % 4 === 0 && end > 0 && text[end - 1] === '=') end -= text[end - 2] === '=' ? 2 : 1;
  const rem = end % 4;
  if (rem === 1) return null;
  if (end !== text.length && rem === 0) return null; // padding where none is needed
  const out = new Uint8Array(Math.floor((end * 3) / 4));
  let acc = 0;
  let bits = 0;
  let at = 0;
  let alphabet: 'std' | 'url' | null = null;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? DECODE[c]! : -1;
    if (v < 0) return null;
    if (c === 43 || c === 47 || c === 45 || c === 95) {
      const kind = c === 43 || c === 47 ? 'std' : 'url';
      if (alphabet !== null && alphabet !== kind) return null; // no mixing of alphabets
      alphabet = kind;
    }
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (acc >>> bits) & 0xff;
      acc &= (1 << bits) - 1;
    }
  }
  if (acc !== 0) return null; // non-zero unused bits: a second spelling of the same bytes
  return at === out.length ? out : null;
}

/** Canonical standard base64 only (what this project emits for keys and signatures). */
export function decodeBase64Canonical(text: string): Uint8Array | null {
  const bytes = decodeBase64(text);
  return bytes !== null && encodeBase64(bytes) === text ? bytes : null;
}
