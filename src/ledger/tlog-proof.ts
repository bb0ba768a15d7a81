/**
 * c2sp.org/tlog-proof@v1 (an entry's offline inclusion proof with its checkpoint) and the
 * export's `log/consistency` file (old size, consistency proof, old checkpoint).
 */
import { AttexError } from '../errors/index.ts';
import { type Checkpoint, type CheckpointTrust, openCheckpoint } from './checkpoint.ts';
import { fromBase64Strict, parseDecimal, parseHashLine, toBase64 } from './encoding.ts';
import { HASH_SIZE, leafHash, verifyConsistency, verifyInclusion } from './merkle.ts';
import type { NoteSignature } from './note.ts';

export const TLOG_PROOF_HEADER = 'c2sp.org/tlog-proof@v1';

export interface TlogProof {
  readonly index: number;
  /** RFC 6962 inclusion path, the leaf's sibling first. */
  readonly proof: readonly Uint8Array[];
  /** The signed checkpoint note, verbatim. */
  readonly checkpoint: string;
  /** Opaque, unauthenticated application data. */
  readonly extra?: Uint8Array;
}

function hashLines(hashes: readonly Uint8Array[]): string {
  return hashes
    .map((h) => {
      if (h.length !== HASH_SIZE) throw new AttexError('ledger.invalid-argument', 'proof hashes must be 32 bytes');
      return `${toBase64(h)}\n`;
    })
    .join('');
}

export function formatTlogProof(proof: TlogProof): string {
  if (!Number.isSafeInteger(proof.index) || proof.index < 0) throw new AttexError('ledger.invalid-argument', 'index must be a non-negative integer');
  const extra = proof.extra ? `extra ${toBase64(proof.extra)}\n` : '';
  return `${TLOG_PROOF_HEADER}\n${extra}index ${proof.index}\n${hashLines(proof.proof)}\n${proof.checkpoint}`;
}

function splitHead(text: string, code: string): { head: string[]; checkpoint: string } {
  if (typeof text !== 'string') throw new AttexError(code, 'not text');
  const blank = text.indexOf('\n\n');
  if (blank < 0) throw new AttexError(code, 'no blank line before the checkpoint');
  return { head: text.slice(0, blank).split('\n'), checkpoint: text.slice(blank + 2) };
}

export function parseTlogProof(text: string): TlogProof {
  const code = 'ledger.proof-malformed';
  const { head, checkpoint } = splitHead(text, code);
  if (head[0] !== TLOG_PROOF_HEADER) throw new AttexError(code, `first line must be ${TLOG_PROOF_HEADER}`);
  let at = 1;
  let extra: Uint8Array | undefined;
  if (head[at]?.startsWith('extra ')) {
    extra = fromBase64Strict(head[at]!.slice('extra '.length)) ?? undefined;
    if (!extra) throw new AttexError(code, 'extra line is not standard base64');
    at++;
  }
  const indexLine = head[at];
  if (!indexLine?.startsWith('index ')) throw new AttexError(code, 'missing "index <i>" line');
  const index = parseDecimal(indexLine.slice('index '.length), code, 'index');
  const proof = head.slice(at + 1).map((line, i) => parseHashLine(line, code, `inclusion proof hash ${i + 1}`));
  if (proof.length > 64) throw new AttexError(code, 'inclusion proof longer than 64 hashes');
  return extra ? { index, proof, checkpoint, extra } : { index, proof, checkpoint };
}

export interface TlogProofVerification {
  readonly index: number;
  readonly checkpoint: Checkpoint;
  readonly witnesses: readonly NoteSignature[];
}

/**
 * Verify a tlog-proof for `entry` (its exact bytes): the checkpoint is signed by the log key
 * (and witnesses per policy), and the inclusion proof leads from the entry's leaf hash to its root.
 * Throws AttexError `ledger.*`.
 */
export function verifyTlogProof(
  proofText: string,
  entry: Uint8Array,
  opts: { logVerifierKey: string; witnessVerifierKeys?: string[]; requireWitness?: boolean; origin?: string },
): TlogProofVerification {
  const parsed = parseTlogProof(proofText);
  const trust: CheckpointTrust = {
    logVerifierKey: opts.logVerifierKey,
    ...(opts.witnessVerifierKeys ? { witnessVerifierKeys: opts.witnessVerifierKeys } : {}),
    ...(opts.requireWitness ? { requireWitness: true } : {}),
    ...(opts.origin !== undefined ? { origin: opts.origin } : {}),
  };
  const { checkpoint, witnesses } = openCheckpoint(parsed.checkpoint, trust);
  if (parsed.index >= checkpoint.size) throw new AttexError('ledger.proof-invalid', `index ${parsed.index} is not below the checkpoint size ${checkpoint.size}`);
  verifyInclusion(leafHash(entry), parsed.index, checkpoint.size, parsed.proof, checkpoint.rootHash);
  return { index: parsed.index, checkpoint, witnesses };
}

export interface ConsistencyFile {
  readonly oldSize: number;
  readonly proof: readonly Uint8Array[];
  /** The old checkpoint (signed note), verbatim. */
  readonly checkpoint: string;
}

export function formatConsistencyFile(file: ConsistencyFile): string {
  if (!Number.isSafeInteger(file.oldSize) || file.oldSize < 1) throw new AttexError('ledger.invalid-argument', 'old size must be at least 1');
  return `old ${file.oldSize}\n${hashLines(file.proof)}\n${file.checkpoint}`;
}

export function parseConsistencyFile(text: string): ConsistencyFile {
  const code = 'ledger.proof-malformed';
  const { head, checkpoint } = splitHead(text, code);
  if (!head[0]?.startsWith('old ')) throw new AttexError(code, 'first line must be "old <size>"');
  const oldSize = parseDecimal(head[0].slice('old '.length), code, 'old size');
  const proof = head.slice(1).map((line, i) => parseHashLine(line, code, `consistency proof hash ${i + 1}`));
  if (proof.length > 128) throw new AttexError(code, 'consistency proof longer than 128 hashes');
  return { oldSize, proof, checkpoint };
}

/** Verify a consistency file against the newer checkpoint it leads to. */
export function verifyConsistencyFile(text: string, newCheckpoint: Checkpoint, trust: CheckpointTrust): { old: Checkpoint } {
  const file = parseConsistencyFile(text);
  const { checkpoint: old } = openCheckpoint(file.checkpoint, { ...trust, requireWitness: false });
  if (old.size !== file.oldSize) throw new AttexError('ledger.proof-invalid', `"old ${file.oldSize}" does not match the old checkpoint size ${old.size}`);
  if (old.origin !== newCheckpoint.origin) throw new AttexError('ledger.checkpoint-origin', 'old and new checkpoints have different origins');
  verifyConsistency(old.size, newCheckpoint.size, old.rootHash, newCheckpoint.rootHash, file.proof);
  return { old };
}
