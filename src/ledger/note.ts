/**
 * C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys (type 0x01) and C2SP
 * tlog-cosignature/v1 witness keys (type 0x04). Parsing follows Go's x/mod note.Open rules:
 * signatures by unknown keys are ignored, a signature by a known key that fails is an error,
 * and at least one known key must have signed.
 */
import { type KeyObject, createHash, createPublicKey } from 'node:crypto';
import { ed25519KeyFromSeed, ed25519PublicKeyBytes, ed25519Signer, verifyEd25519Sodium } from '../ed25519/index.ts';
import { AttexError } from '../errors/index.ts';
import { toHex } from '../util/index.ts';
import { fromBase64Strict, toBase64 } from './encoding.ts';

export const KEY_TYPE_ED25519 = 0x01;
export const KEY_TYPE_COSIGNATURE_V1 = 0x04;
const EM_DASH_PREFIX = '\u2014 ';
const MAX_SIGNATURES = 100;

export interface NoteSigner {
  readonly name: string;
  /** SHA-256(name || 0x0A || type || key)[:4] as a big-endian uint32. */
  readonly keyHash: number;
  readonly type: number;
  readonly publicKey: Uint8Array;
  /** Signature bytes (without the 4-byte key hash) over the note text. */
  sign(text: Uint8Array): Uint8Array;
}

export interface NoteVerifier {
  readonly name: string;
  readonly keyHash: number;
  readonly type: number;
  readonly publicKey: Uint8Array;
  verify(text: Uint8Array, signature: Uint8Array): boolean;
}

export interface NoteSignature {
  readonly name: string;
  readonly keyHash: number;
  /** Present for verified signatures. */
  readonly type?: number;
  /** tlog-cosignature/v1 timestamp (seconds since the epoch), for type 0x04 signatures. */
  readonly timestamp?: number;
}

export interface OpenedNote {
  /** The signed body, ending in a newline. */
  readonly text: string;
  readonly verified: NoteSignature[];
  /** Signatures by keys the caller did not supply (ignored, per the spec). */
  readonly unverified: NoteSignature[];
}

export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+]/u.test(name) && !/[\u0000-\u001f\u007f]/.test(name);
}

export function computeKeyHash(name: string, type: number, publicKey: Uint8Array): number {
  const digest = createHash('sha256').update(`${name}\n`, 'utf8').update(new Uint8Array([type])).update(publicKey).digest();
  return digest.readUInt32BE(0);
}

/** `name+hex8(keyID)+base64(type || key)`. */
export function formatVerifierKey(name: string, publicKey: Uint8Array, type: number = KEY_TYPE_ED25519): string {
  if (!isValidKeyName(name)) throw new AttexError('ledger.key-invalid', 'key name must be non-empty without spaces or "+"');
  if (publicKey.length !== 32) throw new AttexError('ledger.key-invalid', 'an Ed25519 public key is 32 bytes');
  const hash = computeKeyHash(name, type, publicKey).toString(16).padStart(8, '0');
  const typed = new Uint8Array(33);
  typed[0] = type;
  typed.set(publicKey, 1);
  return `${name}+${hash}+${toBase64(typed)}`;
}

/** Parse a verifier key (type 0x01 Ed25519 or 0x04 cosignature/v1). Splits on the first two '+' only. */
export function parseVerifierKey(vkey: string): NoteVerifier {
  const bad = (why: string): never => {
    throw new AttexError('ledger.key-invalid', `verifier key: ${why}`);
  };
  if (typeof vkey !== 'string') bad('not a string');
  const text = vkey.trim();
  const first = text.indexOf('+');
  const second = first < 0 ? -1 : text.indexOf('+', first + 1);
  if (first < 0 || second < 0) bad('want name+hex8+base64');
  const name = text.slice(0, first);
  const hashHex = text.slice(first + 1, second);
  const keyBytes = fromBase64Strict(text.slice(second + 1));
  if (!isValidKeyName(name)) bad('invalid key name');
  if (!/^[0-9a-f]{8}$/.test(hashHex)) bad('key ID must be 8 lowercase hex digits');
  if (!keyBytes || keyBytes.length !== 33) bad('key must be base64 of a type byte and a 32-byte Ed25519 key');
  const type = keyBytes![0]!;
  if (type !== KEY_TYPE_ED25519 && type !== KEY_TYPE_COSIGNATURE_V1) bad(`unsupported key type 0x${type.toString(16).padStart(2, '0')}`);
  const publicKey = keyBytes!.slice(1);
  const keyHash = computeKeyHash(name, type, publicKey);
  if (keyHash !== Number.parseInt(hashHex, 16)) bad(`key ID ${hashHex} does not match the key`);
  return makeVerifier(name, type, publicKey, keyHash);
}

function makeVerifier(name: string, type: number, publicKey: Uint8Array, keyHash: number): NoteVerifier {
  return {
    name,
    type,
    keyHash,
    publicKey,
    verify(text, signature) {
      if (type === KEY_TYPE_ED25519) return verifyEd25519Sodium(signature, text, publicKey);
      if (signature.length !== 72) return false;
      const timestamp = readTimestamp(signature);
      if (timestamp === null) return false;
      return verifyEd25519Sodium(signature.subarray(8), cosignedMessage(timestamp, text), publicKey);
    },
  };
}

function readTimestamp(signature: Uint8Array): number | null {
  const value = Buffer.from(signature.buffer, signature.byteOffset, 8).readBigUInt64BE(0);
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(value);
}

/** tlog-cosignature/v1: the witness signs "cosignature/v1\ntime <t>\n" followed by the whole checkpoint body. */
function cosignedMessage(timestamp: number, text: Uint8Array): Uint8Array {
  return Buffer.concat([Buffer.from(`cosignature/v1\ntime ${timestamp}\n`, 'utf8'), text]);
}

export function ed25519PublicKey(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new AttexError('ledger.key-invalid', 'an Ed25519 public key is 32 bytes');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

/** Raw 32-byte public key of an Ed25519 private or public KeyObject. */
export function rawPublicKey(key: KeyObject): Uint8Array {
  const raw = ed25519PublicKeyBytes(key);
  if (raw === undefined) throw new AttexError('ledger.key-invalid', 'key is not Ed25519');
  return raw;
}

function requirePrivateEd25519(key: KeyObject): KeyObject {
  if (key?.type !== 'private' || key.asymmetricKeyType !== 'ed25519') throw new AttexError('ledger.key-invalid', 'signer needs an Ed25519 private KeyObject');
  return key;
}

/** A type 0x01 Ed25519 note signer (the log key). */
export function createNoteSigner(name: string, privateKey: KeyObject): NoteSigner {
  const signer = ed25519Signer(requirePrivateEd25519(privateKey));
  const publicKey = signer.publicKey;
  if (!isValidKeyName(name)) throw new AttexError('ledger.key-invalid', 'key name must be non-empty without spaces or "+"');
  return { name, type: KEY_TYPE_ED25519, publicKey, keyHash: computeKeyHash(name, KEY_TYPE_ED25519, publicKey), sign: (text) => signer.sign(text) };
}

/** A tlog-cosignature/v1 (type 0x04) witness signer; `clock` supplies the cosignature time. */
export function createCosigner(name: string, privateKey: KeyObject, clock: () => Date = () => new Date()): NoteSigner {
  const signer = ed25519Signer(requirePrivateEd25519(privateKey));
  const publicKey = signer.publicKey;
  if (!isValidKeyName(name)) throw new AttexError('ledger.key-invalid', 'key name must be non-empty without spaces or "+"');
  return {
    name,
    type: KEY_TYPE_COSIGNATURE_V1,
    publicKey,
    keyHash: computeKeyHash(name, KEY_TYPE_COSIGNATURE_V1, publicKey),
    sign(text) {
      const timestamp = Math.floor(clock().getTime() / 1000);
      if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new AttexError('ledger.invalid-argument', 'cosignature time must be after the epoch');
      const out = Buffer.alloc(72);
      out.writeBigUInt64BE(BigInt(timestamp), 0);
      out.set(signer.sign(cosignedMessage(timestamp, text)), 8);
      return new Uint8Array(out);
    },
  };
}

/** Derive an Ed25519 private KeyObject from a 32-byte seed (RFC 8410 PKCS#8 wrapping). */
export function ed25519PrivateKeyFromSeed(seed: Uint8Array): KeyObject {
  const key = ed25519KeyFromSeed(seed);
  if (key === undefined) throw new AttexError('ledger.key-invalid', 'an Ed25519 seed is 32 bytes');
  return key;
}

function checkNoteText(text: string, code: string): void {
  // UTF-8 (JS strings are UTF-16; lone surrogates cannot be encoded) with no control characters but newline.
  if (/[\u0000-\u0009\u000b-\u001f]/.test(text) || !text.isWellFormed()) throw new AttexError(code, 'note contains control characters or invalid Unicode');
}

function signatureLine(signer: NoteSigner, body: Uint8Array): string {
  const sig = signer.sign(body);
  const out = Buffer.alloc(4 + sig.length);
  out.writeUInt32BE(signer.keyHash >>> 0, 0);
  out.set(sig, 4);
  return `${EM_DASH_PREFIX}${signer.name} ${out.toString('base64')}\n`;
}

/** Sign `text` (non-empty, ending in a newline) with every signer: text, a blank line, one signature line each. */
export function signNote(text: string, signers: readonly NoteSigner[]): string {
  checkNoteText(text, 'ledger.note-malformed');
  if (text.length === 0 || !text.endsWith('\n')) throw new AttexError('ledger.note-malformed', 'note text must be non-empty and end in a newline');
  if (signers.length === 0) throw new AttexError('ledger.invalid-argument', 'a note needs at least one signer');
  const body = Buffer.from(text, 'utf8');
  return `${text}\n${signers.map((s) => signatureLine(s, body)).join('')}`;
}

/** Append signature lines (for example witness cosignatures) to an already signed note. */
export function addNoteSignatures(note: string, signers: readonly NoteSigner[]): string {
  const { text } = splitNote(note);
  const body = Buffer.from(text, 'utf8');
  return note + signers.map((s) => signatureLine(s, body)).join('');
}

interface RawSignature {
  name: string;
  keyHash: number;
  signature: Uint8Array;
}

function splitNote(note: string): { text: string; signatures: RawSignature[] } {
  const bad = (why: string): never => {
    throw new AttexError('ledger.note-malformed', `signed note: ${why}`);
  };
  if (typeof note !== 'string') bad('not a string');
  checkNoteText(note, 'ledger.note-malformed');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) bad('no blank line before the signatures');
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (block.length === 0 || !block.endsWith('\n')) bad('signature block must be non-empty and end in a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) bad(`more than ${MAX_SIGNATURES} signatures`);
  const signatures = lines.map((line) => {
    if (!line.startsWith(EM_DASH_PREFIX)) bad('signature line does not start with an em dash (U+2014) and a space');
    const rest = line.slice(EM_DASH_PREFIX.length);
    const space = rest.indexOf(' ');
    if (space < 0) bad('signature line has no key name');
    const name = rest.slice(0, space);
    const bytes = fromBase64Strict(rest.slice(space + 1));
    if (!isValidKeyName(name)) bad('invalid key name in a signature line');
    if (!bytes || bytes.length < 5) bad(`signature by ${name} is not base64 of a key ID and a signature`);
    const view = Buffer.from(bytes!.buffer, bytes!.byteOffset, bytes!.byteLength);
    return { name, keyHash: view.readUInt32BE(0), signature: bytes!.subarray(4) };
  });
  return { text, signatures };
}

/**
 * Open a signed note. `verifiers` are NoteVerifier objects or vkey strings. Throws `ledger.note-malformed`,
 * `ledger.note-bad-signature` (a known key's signature fails) or `ledger.note-unverified` (no known key signed).
 */
export function openNote(note: string, verifiers: readonly (NoteVerifier | string)[]): OpenedNote {
  const keys = verifiers.map((v) => (typeof v === 'string' ? parseVerifierKey(v) : v));
  const { text, signatures } = splitNote(note);
  const body = Buffer.from(text, 'utf8');
  const verified: NoteSignature[] = [];
  const unverified: NoteSignature[] = [];
  const seen = new Set<string>();
  for (const sig of signatures) {
    const key = keys.find((k) => k.name === sig.name && k.keyHash === sig.keyHash);
    if (!key) {
      unverified.push({ name: sig.name, keyHash: sig.keyHash });
      continue;
    }
    if (!key.verify(body, sig.signature)) {
      throw new AttexError('ledger.note-bad-signature', `signature by ${sig.name}+${sig.keyHash.toString(16).padStart(8, '0')} does not verify`);
    }
    const id = `${sig.name}+${sig.keyHash}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const timestamp = key.type === KEY_TYPE_COSIGNATURE_V1 ? readTimestamp(sig.signature)! : undefined;
    verified.push(timestamp === undefined ? { name: sig.name, keyHash: sig.keyHash, type: key.type } : { name: sig.name, keyHash: sig.keyHash, type: key.type, timestamp });
  }
  if (verified.length === 0) throw new AttexError('ledger.note-unverified', 'note has no signature by a known key');
  return { text, verified, unverified };
}

/** Hex key ID for messages. */
export function keyHashHex(keyHash: number): string {
  return toHex(new Uint8Array(Buffer.from([keyHash >>> 24, (keyHash >>> 16) & 0xff, (keyHash >>> 8) & 0xff, keyHash & 0xff])));
}
