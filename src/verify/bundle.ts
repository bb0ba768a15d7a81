/**
 * The receipt bundle (media type application/vnd.attex.bundle.v1+json): everything an offline
 * verifier needs besides the trust file. Parsing is strict; the envelope bytes are carried as
 * base64 so they survive any JSON re-serialization byte for byte. Portable.
 */
import { AttexError } from '../errors/index.ts';
import { decodeBase64 } from '../receipts/base64.ts';
import { MAX_ENVELOPE_BYTES } from '../receipts/dsse.ts';
import { StrictJsonError, parseStrictJson } from '../receipts/strict-json.ts';

export const BUNDLE_MEDIA_TYPE = 'application/vnd.attex.bundle.v1+json';
/** Two envelopes of at most 64 KiB (base64), two proofs: generous but bounded. */
export const MAX_BUNDLE_BYTES = 512 * 1024;
const MAX_PROOF_CHARS = 16 * 1024;

export interface ReceiptBundle {
  readonly mediaType: typeof BUNDLE_MEDIA_TYPE;
  /** The exact DSSE envelope bytes of the execution receipt (log entry). */
  readonly receipt: Uint8Array;
  /** c2sp.org/tlog-proof@v1 text for the receipt. */
  readonly proof: string;
  readonly attestation: {
    /** The exact DSSE envelope bytes of the executor's attestation record (log entry). */
    readonly record: Uint8Array;
    readonly proof: string;
  };
}

/** The JSON form of a bundle (what files hold). */
export interface ReceiptBundleJson {
  readonly mediaType: string;
  readonly receipt: string;
  readonly proof: string;
  readonly attestation: { readonly record: string; readonly proof: string };
}

function malformed(message: string): AttexError {
  return new AttexError('verify.bundle-malformed', `bundle: ${message}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function envelope(v: unknown, what: string): Uint8Array {
  if (typeof v !== 'string') throw malformed(`${what} must be a base64 string`);
  const bytes = decodeBase64(v);
  if (bytes === null) throw malformed(`${what} is not valid base64`);
  if (bytes.length === 0 || bytes.length > MAX_ENVELOPE_BYTES) throw malformed(`${what} must be 1..${MAX_ENVELOPE_BYTES} bytes`);
  return bytes;
}

function proofText(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_PROOF_CHARS) throw malformed(`${what} must be tlog-proof text of at most ${MAX_PROOF_CHARS} characters`);
  return v;
}

/** Accepts the bundle file's bytes or text, or already-parsed JSON. Throws `verify.bundle-malformed`. */
export function parseBundle(input: unknown): ReceiptBundle {
  let json: unknown = input;
  if (input instanceof Uint8Array || typeof input === 'string') {
    const size = typeof input === 'string' ? input.length : input.length;
    if (size > MAX_BUNDLE_BYTES) throw malformed(`larger than ${MAX_BUNDLE_BYTES} bytes`);
    try {
      json = parseStrictJson(input);
    } catch (err) {
      throw malformed(`not valid JSON (${err instanceof StrictJsonError ? err.message : 'parse error'})`);
    }
  }
  if (!isObject(json)) throw malformed('not a JSON object');
  for (const k of Object.keys(json)) {
    if (!['mediaType', 'receipt', 'proof', 'attestation'].includes(k)) throw malformed(`unknown member ${JSON.stringify(k.slice(0, 64))}`);
  }
  if (json.mediaType !== BUNDLE_MEDIA_TYPE) throw malformed(`mediaType must be ${BUNDLE_MEDIA_TYPE}`);
  const att = json.attestation;
  if (!isObject(att)) throw malformed('attestation must be an object with record and proof');
  for (const k of Object.keys(att)) {
    if (!['record', 'proof'].includes(k)) throw malformed(`unknown member attestation.${JSON.stringify(k.slice(0, 64))}`);
  }
  return {
    mediaType: BUNDLE_MEDIA_TYPE,
    receipt: envelope(json.receipt, 'receipt'),
    proof: proofText(json.proof, 'proof'),
    attestation: { record: envelope(att.record, 'attestation.record'), proof: proofText(att.proof, 'attestation.proof') },
  };
}

function base64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** Serialize a bundle (compact JSON, fixed member order). */
export function encodeBundle(bundle: Omit<ReceiptBundle, 'mediaType'>): string {
  const out: ReceiptBundleJson = {
    mediaType: BUNDLE_MEDIA_TYPE,
    receipt: base64(bundle.receipt),
    proof: bundle.proof,
    attestation: { record: base64(bundle.attestation.record), proof: bundle.attestation.proof },
  };
  return JSON.stringify(out);
}
