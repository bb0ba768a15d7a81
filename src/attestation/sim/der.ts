/**
 * A minimal DER encoder for the few structures the simulated TEE writes itself: the AMD and Intel
 * certificate extensions. Certificates and CRLs are built with @peculiar/x509; only the vendor
 * extension bodies are hand-encoded here, byte by byte.
 */
import { concatBytes } from '../../util/index.ts';

function encodeLength(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

export function tlv(tag: number, content: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(tag), encodeLength(content.length), content);
}

export function sequence(...items: Uint8Array[]): Uint8Array {
  return tlv(0x30, concatBytes(...items));
}

/** A non-negative INTEGER in minimal two's-complement form. */
export function integer(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError('DER integer must be a non-negative safe integer');
  const bytes: number[] = [];
  for (let n = value; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  if (bytes.length === 0 || (bytes[0]! & 0x80) !== 0) bytes.unshift(0);
  return tlv(0x02, Uint8Array.from(bytes));
}

export function enumerated(value: number): Uint8Array {
  const body = integer(value);
  body[0] = 0x0a;
  return body;
}

export function octetString(bytes: Uint8Array): Uint8Array {
  return tlv(0x04, bytes);
}

export function ia5String(text: string): Uint8Array {
  if (!/^[\x00-\x7f]*$/.test(text)) throw new RangeError('IA5String must be ASCII');
  return tlv(0x16, new TextEncoder().encode(text));
}

export function boolean(value: boolean): Uint8Array {
  return tlv(0x01, Uint8Array.of(value ? 0xff : 0x00));
}

export function objectIdentifier(oid: string): Uint8Array {
  const arcs = oid.split('.').map((a) => Number(a));
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0)) throw new RangeError(`bad OID ${oid}`);
  const out: number[] = [arcs[0]! * 40 + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const group: number[] = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) group.unshift((n & 0x7f) | 0x80);
    out.push(...group);
  }
  return tlv(0x06, Uint8Array.from(out));
}
