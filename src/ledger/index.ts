/**
 * The transparency log. Pure parts (Merkle math, signed notes, checkpoints, tlog-proofs, tile
 * names) are safe to use in verifiers; the store (`Ledger`) and `exportLedger` do file I/O.
 */
export {
  EMPTY_ROOT,
  HASH_SIZE,
  type SubtreeHashFn,
  consistencyProof,
  inclusionProof,
  leafHash,
  nodeHash,
  rootFromInclusionProof,
  rootHash,
  verifyConsistency,
  verifyInclusion,
} from './merkle.ts';
export {
  KEY_TYPE_COSIGNATURE_V1,
  KEY_TYPE_ED25519,
  type NoteSignature,
  type NoteSigner,
  type NoteVerifier,
  type OpenedNote,
  addNoteSignatures,
  computeKeyHash,
  createCosigner,
  createNoteSigner,
  ed25519PrivateKeyFromSeed,
  ed25519PublicKey,
  formatVerifierKey,
  openNote,
  parseVerifierKey,
  rawPublicKey,
  signNote,
} from './note.ts';
export { type Checkpoint, type CheckpointTrust, type OpenedCheckpoint, formatCheckpoint, openCheckpoint, parseCheckpoint } from './checkpoint.ts';
export {
  type ConsistencyFile,
  type TlogProof,
  type TlogProofVerification,
  TLOG_PROOF_HEADER,
  formatConsistencyFile,
  formatTlogProof,
  parseConsistencyFile,
  parseTlogProof,
  verifyConsistencyFile,
  verifyTlogProof,
} from './tlog-proof.ts';
export { MAX_ENTRY_SIZE, decodeEntryBundle, encodeEntryBundle, entryBundlePath, hashTilePath, tileIndexPath, tilesForSize } from './tiles.ts';
export { Ledger, type LedgerOptions } from './store.ts';
export { type ExportOptions, type ExportResult, exportLedger } from './export.ts';
