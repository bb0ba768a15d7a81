/**
 * C2SP tlog-checkpoint bodies (origin, size, root hash, extension lines) and opening a signed
 * checkpoint against a log key and optional witness keys (tlog-cosignature/v1).
 */
import { AttexError } from '../errors/index.ts';
import { bytesEqual } from '../util/index.ts';
import { parseDecimal, parseHashLine, toBase64 } from './encoding.ts';
import { EMPTY_ROOT, HASH_SIZE } from './merkle.ts';
import { type NoteSignature, type NoteVerifier, type OpenedNote, KEY_TYPE_ED25519, openNote, parseVerifierKey } from './note.ts';

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
  /** Optional non-empty lines after the root hash (opaque to this module). */
  readonly extensions: readonly string[];
}

export function formatCheckpoint(checkpoint: Checkpoint): string {
  const { origin, size, rootHash, extensions } = checkpoint;
  if (origin.length === 0 || origin.includes('\n')) throw new AttexError('ledger.checkpoint-malformed', 'origin must be one non-empty line');
  if (!Number.isSafeInteger(size) || size < 0) throw new AttexError('ledger.checkpoint-malformed', 'size must be a non-negative integer');
  if (rootHash.length !== HASH_SIZE) throw new AttexError('ledger.checkpoint-malformed', 'root hash must be 32 bytes');
  for (const line of extensions) {
    if (line.length === 0 || line.includes('\n')) throw new AttexError('ledger.checkpoint-malformed', 'extension lines must be single non-empty lines');
  }
  return [origin, String(size), toBase64(rootHash), ...extensions].join('\n') + '\n';
}

/** Parse a checkpoint body strictly: no empty lines, decimal size without leading zeros, canonical base64 root. */
export function parseCheckpoint(body: string): Checkpoint {
  const code = 'ledger.checkpoint-malformed';
  if (typeof body !== 'string' || !body.endsWith('\n')) throw new AttexError(code, 'checkpoint body must end in a newline');
  const lines = body.slice(0, -1).split('\n');
  if (lines.length < 3) throw new AttexError(code, 'checkpoint body needs origin, size and root hash lines');
  if (lines.some((l) => l.length === 0)) throw new AttexError(code, 'checkpoint body has an empty line');
  const size = parseDecimal(lines[1]!, code, 'checkpoint size');
  const rootHash = parseHashLine(lines[2]!, code, 'checkpoint root hash');
  if (size === 0 && !bytesEqual(rootHash, EMPTY_ROOT)) throw new AttexError(code, 'a size-0 checkpoint must have root SHA-256("")');
  return { origin: lines[0]!, size, rootHash, extensions: lines.slice(3) };
}

export interface CheckpointTrust {
  /** The log's vkey (type 0x01). Its name is the expected origin unless `origin` is given. */
  readonly logVerifierKey: string | NoteVerifier;
  readonly witnessVerifierKeys?: readonly (string | NoteVerifier)[];
  /** Require at least one valid witness signature. */
  readonly requireWitness?: boolean;
  readonly origin?: string;
}

// Parsed verifier keys by vkey text: building the key object costs more than the signature check.
const verifierCache = new Map<string, NoteVerifier>();
function verifierFor(key: string | NoteVerifier): NoteVerifier {
  if (typeof key !== 'string') return key;
  let verifier = verifierCache.get(key);
  if (!verifier) {
    verifier = parseVerifierKey(key);
    if (verifierCache.size >= 64) verifierCache.delete(verifierCache.keys().next().value!);
    verifierCache.set(key, verifier);
  }
  return verifier;
}

export interface OpenedCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly note: OpenedNote;
  /** Verified witness signatures (cosignatures carry their timestamp). */
  readonly witnesses: readonly NoteSignature[];
}

/**
 * Verify a signed checkpoint: the log key must have signed it, every signature by a known
 * witness must verify, and with `requireWitness` at least one must be present.
 */
export function openCheckpoint(noteText: string, trust: CheckpointTrust): OpenedCheckpoint {
  // Receipts of one log share few checkpoints: remember successful openings (keyed by the note and
  // the whole trust policy, so a different policy never reuses a result).
  const cacheKey = typeof trust.logVerifierKey === 'string' && (trust.witnessVerifierKeys ?? []).every((k) => typeof k === 'string')
    ? JSON.stringify([noteText, trust.logVerifierKey, trust.witnessVerifierKeys ?? [], trust.requireWitness === true, trust.origin ?? null])
    : null;
  const cached = cacheKey === null ? undefined : openedCache.get(cacheKey);
  if (cached) return { ...cached, checkpoint: { ...cached.checkpoint, rootHash: cached.checkpoint.rootHash.slice() } };
  const opened = openCheckpointUncached(noteText, trust);
  if (cacheKey !== null) {
    if (openedCache.size >= 256) openedCache.delete(openedCache.keys().next().value!);
    openedCache.set(cacheKey, opened);
  }
  return opened;
}

const openedCache = new Map<string, OpenedCheckpoint>();

function openCheckpointUncached(noteText: string, trust: CheckpointTrust): OpenedCheckpoint {
  const logKey = verifierFor(trust.logVerifierKey);
  if (logKey.type !== KEY_TYPE_ED25519) throw new AttexError('ledger.key-invalid', 'the log key must be an Ed25519 (type 0x01) key');
  const witnessKeys = (trust.witnessVerifierKeys ?? []).map(verifierFor);
  const note = openNote(noteText, [logKey, ...witnessKeys]);
  const isLog = (s: NoteSignature) => s.name === logKey.name && s.keyHash === logKey.keyHash;
  if (!note.verified.some(isLog)) throw new AttexError('ledger.note-unverified', `checkpoint is not signed by the log key ${logKey.name}`);
  const checkpoint = parseCheckpoint(note.text);
  const origin = trust.origin ?? logKey.name;
  if (checkpoint.origin !== origin) throw new AttexError('ledger.checkpoint-origin', `checkpoint origin ${JSON.stringify(checkpoint.origin)} is not ${JSON.stringify(origin)}`);
  const witnesses = note.verified.filter((s) => !isLog(s));
  if (trust.requireWitness && witnesses.length === 0) throw new AttexError('ledger.witness-missing', 'checkpoint has no valid witness cosignature');
  return { checkpoint, note, witnesses };
}
