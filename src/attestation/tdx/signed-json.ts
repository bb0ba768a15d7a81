/**
 * Intel PCS bodies {"tcbInfo":{...},"signature":"<hex>"} sign the inner object exactly as it
 * appears in the body. Re-serialising would change the bytes, so this finds the byte span of
 * the named member's value in the original body and hands back those bytes untouched.
 */
import { AttexError } from '../../errors/index.ts';
import { LIMITS } from '../x509/index.ts';

export interface SignedJson {
  /** The exact bytes of the inner object, as signed. */
  readonly signedBytes: Uint8Array;
  /** The inner object, parsed from signedBytes. */
  readonly value: unknown;
  /** r||s, 64 bytes. */
  readonly signature: Uint8Array;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const isWs = (b: number | undefined) => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;

function malformed(what: string, message: string): never {
  throw new AttexError('tdx.collateral.malformed', `${what}: ${message}`);
}

/** Index just past the string starting at `at` (which holds a quote). */
function skipString(b: Uint8Array, at: number): number {
  let i = at + 1;
  while (i < b.length) {
    const c = b[i]!;
    if (c === BACKSLASH) i += 2;
    else if (c === QUOTE) return i + 1;
    else i++;
  }
  return i;
}

/** Index just past the JSON value starting at `at`. The body is known to be valid JSON. */
function skipValue(b: Uint8Array, at: number): number {
  const first = b[at];
  if (first === QUOTE) return skipString(b, at);
  if (first === 0x7b || first === 0x5b) {
    let depth = 0;
    let i = at;
    while (i < b.length) {
      const c = b[i]!;
      if (c === QUOTE) {
        i = skipString(b, i);
        continue;
      }
      if (c === 0x7b || c === 0x5b) depth++;
      else if (c === 0x7d || c === 0x5d) {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    return i;
  }
  let i = at;
  while (i < b.length && !isWs(b[i]) && b[i] !== 0x2c && b[i] !== 0x7d) i++;
  return i;
}

/**
 * Split a PCS body into the exact bytes of member `member` and the hex `signature` member.
 * Throws AttexError `tdx.collateral.malformed`.
 */
export function extractSignedJson(body: Uint8Array, member: string, what: string): SignedJson {
  if (!(body instanceof Uint8Array)) malformed(what, 'not bytes');
  if (body.length > LIMITS.collateralJsonBytes) malformed(what, `larger than ${LIMITS.collateralJsonBytes} bytes`);
  // The span walker below reads raw bytes from offset 0; a decoder that silently drops a BOM
  // would let JSON.parse and the walker see different texts, so a BOM is kept and refused.
  if (body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) malformed(what, 'starts with a byte-order mark');
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let whole: unknown;
  try {
    whole = JSON.parse(decoder.decode(body));
  } catch {
    malformed(what, 'not UTF-8 JSON');
  }
  if (typeof whole !== 'object' || whole === null || Array.isArray(whole)) malformed(what, 'not a JSON object');

  // Walk the top-level members, recording each value's byte span.
  const spans = new Map<string, [number, number]>();
  let i = 0;
  const ws = () => {
    while (isWs(body[i])) i++;
  };
  ws();
  i++; // '{'
  ws();
  while (i < body.length && body[i] !== 0x7d) {
    const keyEnd = skipString(body, i);
    const rawKey = decoder.decode(body.subarray(i, keyEnd));
    const key = JSON.parse(rawKey) as string;
    // Only the two members a PCS body has, each spelled plainly: nothing unsigned rides along.
    if (key !== member && key !== 'signature') malformed(what, `unexpected top-level member ${JSON.stringify(key.slice(0, 40))}`);
    if (rawKey !== `"${key}"`) malformed(what, `member "${key}" is written with escapes`);
    i = keyEnd;
    ws();
    i++; // ':'
    ws();
    const start = i;
    i = skipValue(body, i);
    if (spans.has(key)) malformed(what, `member "${key}" appears twice`);
    spans.set(key, [start, i]);
    ws();
    if (body[i] === 0x2c) {
      i++;
      ws();
    }
  }

  const span = spans.get(member);
  if (span === undefined) malformed(what, `no "${member}" member`);
  const signedBytes = body.slice(span[0], span[1]);
  if (signedBytes[0] !== 0x7b) malformed(what, `"${member}" is not an object`);
  const value: unknown = JSON.parse(decoder.decode(signedBytes));

  const sigHex = (whole as Record<string, unknown>).signature;
  if (typeof sigHex !== 'string' || !/^[0-9a-fA-F]{128}$/.test(sigHex)) {
    malformed(what, '"signature" is not 64 bytes of hex (r||s)');
  }
  return { signedBytes, value, signature: new Uint8Array(Buffer.from(sigHex, 'hex')) };
}
