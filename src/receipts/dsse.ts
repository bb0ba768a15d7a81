/**
 * DSSE v1 envelopes (https://github.com/secure-systems-lab/dsse), Ed25519 only.
 *
 * The envelope bytes are what the log commits to, so serialization is deterministic: compact
 * JSON, keys sorted (payload, payloadType, signatures / keyid, sig), standard padded base64.
 * Parsing is strict about what it reads (UTF-8, no duplicate keys, canonical-alphabet base64,
 * a size cap) and tolerant of unknown top-level members, as the spec asks. Portable: the
 * verification path uses no Node APIs.
 */
import { AttexError } from '../errors/index.ts';
import { decodeBase64, encodeBase64 } from './base64.ts';
import { canonicalJsonFast } from './canonical.ts';
import { ED25519_SIGNATURE_LENGTH, verifyEd25519 } from './ed25519.ts';
import { StrictJsonError, parseStrictJson } from './strict-json.ts';

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
/** An envelope is a log entry, and a tlog entry bundle caps an entry at 65,535 bytes. */
export const MAX_ENVELOPE_BYTES = 65_535;
const MAX_SIGNATURES = 16;
const MAX_PAYLOAD_TYPE_LENGTH = 256;

/** What signs receipts: the executor's Ed25519 key (node:crypto on the hot path). */
export interface ReceiptSigner {
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKeyRaw: Uint8Array;
  /** securesystemslib keyid of the public key (lowercase hex SHA-256 of its canonical JSON). */
  readonly keyId: string;
  sign(message: Uint8Array): Uint8Array;
}

export interface DsseSignature {
  readonly keyid?: string;
  readonly sig: Uint8Array;
}

/** A parsed, NOT yet verified envelope. */
export interface DsseEnvelope {
  readonly payloadType: string;
  readonly payload: Uint8Array;
  readonly signatures: readonly DsseSignature[];
}

export interface VerifiedDsse {
  readonly payloadType: string;
  readonly payload: Uint8Array;
  /** The keyid hint of the signature that verified (unauthenticated), if it had one. */
  readonly keyId?: string;
}

const encoder = new TextEncoder();

/** PAE(type, body) = "DSSEv1" SP len(type) SP type SP len(body) SP body, lengths in bytes. */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = encoder.encode(payloadType);
  const head = encoder.encode(`DSSEv1 ${type.length} `);
  const mid = encoder.encode(` ${payload.length} `);
  const out = new Uint8Array(head.length + type.length + mid.length + payload.length);
  out.set(head, 0);
  out.set(type, head.length);
  out.set(mid, head.length + type.length);
  out.set(payload, head.length + type.length + mid.length);
  return out;
}

/** The exact envelope bytes for one signature by `signer`. */
export function signDsse(payloadType: string, payload: Uint8Array, signer: ReceiptSigner): Uint8Array {
  checkPayloadType(payloadType);
  const sig = signer.sign(pae(payloadType, payload));
  if (sig.length !== ED25519_SIGNATURE_LENGTH) throw new AttexError('receipt.signer', 'signer returned a signature that is not 64 bytes');
  const envelope = {
    payload: encodeBase64(payload),
    payloadType,
    signatures: [{ keyid: signer.keyId, sig: encodeBase64(sig) }],
  };
  const bytes = encoder.encode(canonicalJsonFast(envelope));
  if (bytes.length > MAX_ENVELOPE_BYTES) {
    throw new AttexError('receipt.too-large', `envelope would be ${bytes.length} bytes; a log entry holds at most ${MAX_ENVELOPE_BYTES}`);
  }
  return bytes;
}

/** Parse without verifying (to read a key hint, or report what an envelope claims). */
export function parseDsse(envelope: Uint8Array): DsseEnvelope {
  if (!(envelope instanceof Uint8Array)) throw new AttexError('receipt.malformed', 'envelope must be bytes');
  if (envelope.length > MAX_ENVELOPE_BYTES) {
    throw new AttexError('receipt.too-large', `envelope is ${envelope.length} bytes; at most ${MAX_ENVELOPE_BYTES} are accepted`);
  }
  let json: unknown;
  try {
    json = parseStrictJson(envelope);
  } catch (err) {
    throw new AttexError('receipt.malformed', `envelope is not valid JSON: ${err instanceof StrictJsonError ? err.message : 'parse error'}`);
  }
  if (!isPlainObject(json)) throw new AttexError('receipt.malformed', 'envelope is not a JSON object');
  const { payloadType, payload, signatures } = json;
  if (typeof payloadType !== 'string') throw new AttexError('receipt.malformed', 'envelope.payloadType must be a string');
  checkPayloadType(payloadType);
  if (typeof payload !== 'string') throw new AttexError('receipt.malformed', 'envelope.payload must be a string');
  const payloadBytes = decodeBase64(payload);
  if (payloadBytes === null) throw new AttexError('receipt.malformed', 'envelope.payload is not valid base64');
  if (!Array.isArray(signatures) || signatures.length === 0) {
    throw new AttexError('receipt.malformed', 'envelope.signatures must be a non-empty array');
  }
  if (signatures.length > MAX_SIGNATURES) throw new AttexError('receipt.malformed', `envelope has more than ${MAX_SIGNATURES} signatures`);
  const parsed = signatures.map((s, i): DsseSignature => {
    if (!isPlainObject(s)) throw new AttexError('receipt.malformed', `envelope.signatures[${i}] is not an object`);
    if (typeof s.sig !== 'string') throw new AttexError('receipt.malformed', `envelope.signatures[${i}].sig must be a string`);
    const sig = decodeBase64(s.sig);
    if (sig === null) throw new AttexError('receipt.malformed', `envelope.signatures[${i}].sig is not valid base64`);
    if (s.keyid !== undefined && typeof s.keyid !== 'string') {
      throw new AttexError('receipt.malformed', `envelope.signatures[${i}].keyid must be a string`);
    }
    return s.keyid === undefined ? { sig } : { keyid: s.keyid, sig };
  });
  return { payloadType, payload: payloadBytes, signatures: parsed };
}

/**
 * Verify that some signature is a valid strict Ed25519 signature by `publicKey` over
 * PAE(payloadType, payload). keyids are hints only and never select or exclude a signature.
 */
export function verifyDsse(envelope: Uint8Array, publicKey: Uint8Array): VerifiedDsse {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw new AttexError('receipt.key', 'executor public key must be 32 raw Ed25519 bytes');
  }
  const env = parseDsse(envelope);
  const message = pae(env.payloadType, env.payload);
  for (const s of env.signatures) {
    if (verifyEd25519(s.sig, message, publicKey)) {
      return s.keyid === undefined
        ? { payloadType: env.payloadType, payload: env.payload }
        : { payloadType: env.payloadType, payload: env.payload, keyId: s.keyid };
    }
  }
  throw new AttexError('receipt.signature', `none of the ${env.signatures.length} signature(s) verifies with the given key`);
}

function checkPayloadType(payloadType: string): void {
  if (payloadType.length === 0 || payloadType.length > MAX_PAYLOAD_TYPE_LENGTH) {
    throw new AttexError('receipt.malformed', `payloadType must be 1..${MAX_PAYLOAD_TYPE_LENGTH} characters`);
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
