/**
 * Minimal DER reader for the Intel SGX certificate extension (OID 1.2.840.113741.1.13.1).
 * Only what that extension uses: SEQUENCE, OID, INTEGER, ENUMERATED, OCTET STRING, BOOLEAN.
 * Throws AttexError `tdx.pck-extension` on anything malformed.
 */
import { AttexError } from '../../errors/index.ts';

export const TAG_BOOLEAN = 0x01;
export const TAG_INTEGER = 0x02;
export const TAG_OCTET_STRING = 0x04;
export const TAG_OID = 0x06;
export const TAG_ENUMERATED = 0x0a;
export const TAG_SEQUENCE = 0x30;

export interface Tlv {
  readonly tag: number;
  readonly value: Uint8Array;
}

function fail(message: string): never {
  throw new AttexError('tdx.pck-extension', message);
}

/** Split a DER buffer into its consecutive top-level TLVs. */
export function readTlvs(bytes: Uint8Array): Tlv[] {
  const out: Tlv[] = [];
  let at = 0;
  while (at < bytes.length) {
    const tag = bytes[at++]!;
    if ((tag & 0x1f) === 0x1f) fail('high-tag-number form is not used by the SGX extension');
    if (at >= bytes.length) fail('truncated DER length');
    let len = bytes[at++]!;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 3) fail('unsupported DER length form');
      len = 0;
      for (let i = 0; i < n; i++) {
        if (at >= bytes.length) fail('truncated DER length');
        len = len * 256 + bytes[at++]!;
      }
    }
    if (at + len > bytes.length) fail('DER value runs past its container');
    out.push({ tag, value: bytes.subarray(at, at + len) });
    at += len;
  }
  return out;
}

export function expectTag(tlv: Tlv | undefined, tag: number, what: string): Uint8Array {
  if (tlv === undefined || tlv.tag !== tag) fail(`${what}: expected DER tag 0x${tag.toString(16)}`);
  return tlv.value;
}

export function decodeOid(value: Uint8Array): string {
  if (value.length === 0) fail('empty OID');
  const arcs: number[] = [];
  let acc = 0;
  for (let i = 0; i < value.length; i++) {
    const b = value[i]!;
    acc = acc * 128 + (b & 0x7f);
    if (acc > Number.MAX_SAFE_INTEGER / 128) fail('OID arc too large');
    if ((b & 0x80) === 0) {
      if (arcs.length === 0) {
        const first = acc < 80 ? Math.floor(acc / 40) : 2;
        arcs.push(first, acc - first * 40);
      } else {
        arcs.push(acc);
      }
      acc = 0;
    } else if (i === value.length - 1) {
      fail('truncated OID');
    }
  }
  return arcs.join('.');
}

/** A small non-negative INTEGER or ENUMERATED (SVNs, PCESVN, SGX type). */
export function decodeSmallUnsigned(value: Uint8Array, what: string): number {
  if (value.length === 0 || value.length > 4) fail(`${what}: integer of ${value.length} bytes`);
  if (value[0]! & 0x80) fail(`${what}: negative integer`);
  let n = 0;
  for (const b of value) n = n * 256 + b;
  return n;
}
