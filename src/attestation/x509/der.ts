/**
 * A minimal DER reader: just enough to walk certificate and CRL envelopes, AlgorithmIdentifiers
 * and vendor extensions. Every length is checked against its container before use, so a hostile
 * length field can never make us read past the buffer or allocate (values are subarrays).
 * Errors are AttexErrors carrying the caller's code, so each verifier keeps its own vocabulary.
 */
import { AttexError } from '../../errors/index.ts';

export const TAG_BOOLEAN = 0x01;
export const TAG_INTEGER = 0x02;
export const TAG_BIT_STRING = 0x03;
export const TAG_OCTET_STRING = 0x04;
export const TAG_NULL = 0x05;
export const TAG_OID = 0x06;
export const TAG_ENUMERATED = 0x0a;
export const TAG_SEQUENCE = 0x30;

export interface Tlv {
  readonly tag: number;
  /** The value bytes (a view into the input). */
  readonly value: Uint8Array;
  /** The whole TLV, header included (a view into the input). */
  readonly encoded: Uint8Array;
}

/** Split `bytes` into its consecutive TLVs; they must fill it exactly. */
export function readTlvs(bytes: Uint8Array, code: string): Tlv[] {
  const fail = (message: string): never => {
    throw new AttexError(code, message);
  };
  const out: Tlv[] = [];
  let at = 0;
  while (at < bytes.length) {
    const start = at;
    const tag = bytes[at++]!;
    if ((tag & 0x1f) === 0x1f) fail('DER high-tag-number form is not used here');
    if (at >= bytes.length) fail('truncated DER length');
    let len = bytes[at++]!;
    if (len & 0x80) {
      const n = len & 0x7f;
      // Four length bytes cover 4 GiB, far beyond anything these verifiers accept.
      if (n === 0 || n > 4) fail('unsupported DER length form');
      if (at < bytes.length && bytes[at] === 0) fail('non-minimal DER length (leading zero byte)');
      len = 0;
      for (let i = 0; i < n; i++) {
        if (at >= bytes.length) fail('truncated DER length');
        len = len * 256 + bytes[at++]!;
      }
      // DER has one encoding per length: the long form only from 128 on, in as few bytes as fit.
      if (len < 0x80) fail('non-minimal DER length (long form for a short length)');
    }
    if (len > bytes.length - at) fail('DER value runs past its container');
    out.push({ tag, value: bytes.subarray(at, at + len), encoded: bytes.subarray(start, at + len) });
    at += len;
  }
  return out;
}

/**
 * Input that must be one DER SEQUENCE (a certificate or CRL) and nothing else: refuses PEM,
 * base64 or hex text (which X.509 libraries would also accept, each a second encoding of the
 * same object) and trailing bytes.
 */
export function assertDerSequence(bytes: Uint8Array, code: string, what: string): void {
  if (bytes[0] !== TAG_SEQUENCE) throw new AttexError(code, `${what} is not DER (it does not start with a SEQUENCE; PEM or text encodings are not accepted here)`);
  readSingleTlv(bytes, code, what);
}

/** The single TLV that fills `bytes` exactly. */
export function readSingleTlv(bytes: Uint8Array, code: string, what: string): Tlv {
  const tlvs = readTlvs(bytes, code);
  if (tlvs.length !== 1) throw new AttexError(code, `${what}: expected one DER value, found ${tlvs.length}`);
  return tlvs[0]!;
}

export function expectTag(tlv: Tlv | undefined, tag: number, code: string, what: string): Uint8Array {
  if (tlv === undefined || tlv.tag !== tag) throw new AttexError(code, `${what}: expected DER tag 0x${tag.toString(16)}`);
  return tlv.value;
}

export function decodeOid(value: Uint8Array, code: string): string {
  if (value.length === 0) throw new AttexError(code, 'empty OID');
  const arcs: number[] = [];
  let acc = 0;
  for (let i = 0; i < value.length; i++) {
    const b = value[i]!;
    acc = acc * 128 + (b & 0x7f);
    if (acc > Number.MAX_SAFE_INTEGER / 128) throw new AttexError(code, 'OID arc too large');
    if ((b & 0x80) === 0) {
      if (arcs.length === 0) {
        const first = acc < 80 ? Math.floor(acc / 40) : 2;
        arcs.push(first, acc - first * 40);
      } else {
        arcs.push(acc);
      }
      acc = 0;
    } else if (i === value.length - 1) {
      throw new AttexError(code, 'truncated OID');
    }
  }
  return arcs.join('.');
}

/** A small non-negative INTEGER or ENUMERATED value (SVNs, versions, salt lengths). */
export function decodeSmallUnsigned(value: Uint8Array, code: string, what: string): number {
  // DER needs a leading zero byte for values with the top bit set, so 2^32 - 1 takes five bytes.
  if (value.length === 0 || value.length > 5 || (value.length === 5 && value[0] !== 0)) {
    throw new AttexError(code, `${what}: integer of ${value.length} bytes`);
  }
  if (value[0]! & 0x80) throw new AttexError(code, `${what}: negative integer`);
  let n = 0;
  for (const b of value) n = n * 256 + b;
  return n;
}
