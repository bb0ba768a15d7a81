/**
 * The embedded ledger store. Directory layout (the public tlog-tiles layout, exported from a
 * sequence file):
 *
 *   seq                  append-only sequence of entries and published checkpoints (source of truth)
 *   checkpoint           checkpoint file (signed note), rewritten on interval/explicit publication
 *   tile/<L>/<N>         full hash tiles (immutable once written)
 *   tile/entries/<N>     full entry bundles (immutable once written)
 *   tmp/                 temporaries of atomic writes (cleared on open)
 *
 * Partial tiles are derived on demand (`tile()`, exports) from the in-memory tree and `seq`.
 * Appending makes an entry durable in `seq` (group commit); an append may ask for its batch to
 * carry a checkpoint signed over it, written in the same write and fsync. See docs/ledger.md
 * for the recovery and tamper rules.
 */
import type { KeyObject } from 'node:crypto';
import { type FileHandle, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { AttexError, toAttexError } from '../errors/index.ts';
import { type StateDirLock, bytesEqual, lockStateDirectory } from '../util/index.ts';
import { type Checkpoint, formatCheckpoint, openCheckpoint } from './checkpoint.ts';
import { fsyncDirectory, readFileIfExists, writeFileAtomic } from './files.ts';
import { HashTree } from './hash-tree.ts';
import { leafHash } from './merkle.ts';
import { type CheckpointKind, type NoteLocation, PublishedIndex } from './published.ts';
import { type NoteSigner, type NoteVerifier, createNoteSigner, formatVerifierKey, parseVerifierKey, signNote } from './note.ts';
import {
  GroupCommitWriter,
  RECORD_CHECKPOINT,
  RECORD_COMMIT_CHECKPOINT,
  RECORD_ENTRY,
  RECORD_HEADER_SIZE,
  SEQUENCE_MAGIC,
  encodeEntryRecord,
  encodeRecord,
  entryLeafHashes,
  openSequenceFile,
  scanSequence,
} from './sequence.ts';
import { deriveTile, verifyFullTiles, writeFullTiles } from './tile-sync.ts';
import { MAX_ENTRY_SIZE } from './tiles.ts';
import { formatTlogProof } from './tlog-proof.ts';

export interface LedgerOptions {
  /** Checkpoint origin; defaults to the signer's name (verifiers expect them equal unless told otherwise). */
  readonly origin?: string;
  /** The log key: an Ed25519 private KeyObject and its signed-note key name. */
  readonly signer: { readonly name: string; readonly privateKey: KeyObject };
  /** Local witnesses that cosign every checkpoint (see createCosigner). */
  readonly witnesses?: readonly NoteSigner[];
  /** Milliseconds after an append before a checkpoint is published; 0 = only on demand. Default 1000. */
  readonly checkpointInterval?: number;
  /**
   * Hold the directory's lock (LEDGER_LOCK_NAME, see lockStateDirectory) while open, so that no
   * other process opens it meanwhile: open repairs a torn tail and clears `tmp`, which would
   * damage another writer's work. `waitMs`: how long to wait for a lock another process holds
   * (default 0: refuse at once with `ledger.locked`). If the lock is lost while open, appends
   * fail with `ledger.lock-lost`.
   */
  readonly lock?: { readonly waitMs?: number };
}

/** The lock directory a ledger opened with `lock` holds in its directory. */
export const LEDGER_LOCK_NAME = 'ledger.lock';

const MAX_KEY_BYTES = 1024;
/** setTimeout's longest delay; a longer interval would fire at once. */
const MAX_INTERVAL_MS = 2 ** 31 - 1;
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });
/** The checkpoint file is one signed note: a few hundred bytes, a few KB with cosignatures. */
const MAX_CHECKPOINT_FILE_BYTES = 1 << 20;

export class Ledger {
  readonly dir: string;
  readonly origin: string;
  /** The log's signed-note verifier key. */
  readonly verifierKey: string;
  readonly witnessVerifierKeys: readonly string[];
  /** Bytes of a torn tail truncated on open (un-acknowledged by construction). */
  readonly recoveredTailBytes: number;

  #file: FileHandle;
  #writer: GroupCommitWriter;
  #tree = new HashTree();
  #offsets: number[] = [];
  #lengths: number[] = [];
  #keys = new Map<string, number>();
  #pendingKeys = new Set<string>();
  #signers: NoteSigner[];
  #logVerifier: NoteVerifier;
  /** Where every published checkpoint's note lies in `seq` (only the latest note is kept). */
  #published = new PublishedIndex();
  /** Latest published checkpoint (checkpoint file or commit checkpoint). */
  #latest: { size: number; note: string } | null = null;
  /** Entries covered by the full tiles on disk. */
  #tilesSize = 0;
  /** The checkpoint sealed into the batch being written, and that batch's leaf hashes. */
  #sealed: { size: number; note: string; hashes: Uint8Array[] } | null = null;
  #publishing: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | null = null;
  #interval: number;
  /** No more appends or publications (set when close() begins). */
  #closed = false;
  /** The sequence file is closed: nothing can be read either. */
  #released = false;

  readonly #held: HeldLock;

  private constructor(dir: string, file: FileHandle, end: number, opts: LedgerOptions, logSigner: NoteSigner, recoveredTailBytes: number, held: HeldLock) {
    this.dir = dir;
    this.#held = held;
    this.#file = file;
    this.#signers = [logSigner, ...(opts.witnesses ?? [])];
    this.verifierKey = formatVerifierKey(logSigner.name, logSigner.publicKey);
    this.#logVerifier = parseVerifierKey(this.verifierKey);
    this.witnessVerifierKeys = (opts.witnesses ?? []).map((w) => formatVerifierKey(w.name, w.publicKey, w.type));
    this.origin = opts.origin ?? opts.signer.name;
    this.#interval = opts.checkpointInterval ?? 1000;
    this.recoveredTailBytes = recoveredTailBytes;
    this.#writer = new GroupCommitWriter(
      file,
      end,
      (offsets, records) => this.#integrateDurable(offsets, records),
      (records) => this.#sealBatch(records),
      () => (this.#held.lost ? this.#lockLostError() : undefined),
    );
  }

  #lockLostError(): AttexError {
    return new AttexError('ledger.lock-lost', `the lock of ${this.dir} was lost (another process may have opened it): nothing more is written; close and reopen the ledger`);
  }

  static async open(dir: string, opts: LedgerOptions): Promise<Ledger> {
    if (!opts?.signer?.privateKey) throw new AttexError('ledger.invalid-argument', 'Ledger.open needs a signer { name, privateKey }');
    const origin = opts.origin ?? opts.signer.name;
    if (!origin || /[\n\r]/.test(origin)) throw new AttexError('ledger.invalid-argument', 'origin must be one non-empty line');
    if (opts.checkpointInterval !== undefined && !(Number.isFinite(opts.checkpointInterval) && opts.checkpointInterval >= 0 && opts.checkpointInterval <= MAX_INTERVAL_MS)) {
      throw new AttexError('ledger.invalid-argument', `checkpointInterval must be a number of milliseconds from 0 to ${MAX_INTERVAL_MS}`);
    }
    const logSigner = createNoteSigner(opts.signer.name, opts.signer.privateKey); // the key is checked before the disk is touched
    const root = path.resolve(dir);
    let file: FileHandle;
    const held: HeldLock = { lock: undefined, lost: false };
    try {
      const created = await mkdir(root, { recursive: true });
      if (created !== undefined) await fsyncDirectory(path.dirname(root));
      if (opts.lock) {
        held.lock = await lockStateDirectory(root, {
          name: LEDGER_LOCK_NAME,
          waitMs: opts.lock.waitMs ?? 0,
          codes: { locked: 'ledger.locked', io: 'ledger.io', lockedHint: 'a ledger is opened by one process at a time (stop the executor or broker that holds it first)' },
          onLost: () => (held.lost = true),
        });
      }
      await rm(path.join(root, 'tmp'), { recursive: true, force: true });
      await mkdir(path.join(root, 'tmp'));
      file = await openSequenceFile(path.join(root, 'seq'), root);
    } catch (err) {
      await held.lock?.release();
      throw toAttexError(err, 'ledger.io');
    }
    try {
      // Built record by record as `seq` is read: open holds no more than the running ledger does.
      const tree = new HashTree();
      const offsets: number[] = [];
      const lengths: number[] = [];
      const keys = new Map<string, number>();
      const published = new PublishedIndex();
      const last: LastRecorded = {};
      const scan = await scanSequence(file, 'seq', {
        entry: (e) => {
          if (e.key !== undefined) keys.set(e.key, offsets.length);
          offsets.push(e.offset);
          lengths.push(e.length);
          tree.append([leafHash(e.entry)]);
        },
        checkpoint: (note, offset, inFile) => {
          // Only the size is read here; the signature and root are checked for the last record
          // of each kind in #recover, and for older ones when they are read (#noteAt).
          const kind: CheckpointKind = inFile ? 'file' : 'commit';
          const size = recordedSize(note, offset);
          const previous = last[kind];
          if (size > offsets.length || (previous && size < previous.size)) throw new AttexError('ledger.tampered', `seq: checkpoint recorded at offset ${offset} has size ${size}, out of order`);
          published.add(kind, { size, offset: offset + RECORD_HEADER_SIZE, length: Buffer.byteLength(note) });
          last[kind] = { size, note, offset };
        },
      });
      let end = scan.validLength;
      if (scan.validLength < scan.fileLength) await refuseTruncatingAcknowledged(root, offsets.length);
      if (end < SEQUENCE_MAGIC.length) {
        await file.truncate(0);
        await file.write(SEQUENCE_MAGIC, 0, SEQUENCE_MAGIC.length, 0);
        end = SEQUENCE_MAGIC.length;
        await file.sync();
      } else if (scan.validLength < scan.fileLength) {
        await file.truncate(scan.validLength);
        await file.sync();
      }
      const ledger = new Ledger(root, file, end, opts, logSigner, Math.max(0, scan.fileLength - end), held);
      ledger.#tree = tree;
      ledger.#offsets = offsets;
      ledger.#lengths = lengths;
      ledger.#keys = keys;
      ledger.#published = published;
      await ledger.#recover(last);
      return ledger;
    } catch (err) {
      await file.close().catch(() => undefined);
      await held.lock?.release();
      throw toAttexError(err, 'ledger.io');
    }
  }

  /** Group-commit counters: write+fsync batches and the records they carried. */
  get commitStats(): { readonly batches: number; readonly records: number } {
    return { ...this.#writer.stats };
  }

  /** Number of durable entries. */
  get size(): number {
    return this.#tree.size;
  }

  /**
   * Append one entry (≤ 65,535 bytes); resolves once it is durable on disk. With `checkpoint`,
   * the group commit that carries the entry also carries a checkpoint signed over it (same write,
   * same fsync), so `tlogProof(index)` is ready, without further I/O, when this resolves.
   */
  async append(entry: Uint8Array, opts: { key?: string; checkpoint?: boolean } = {}): Promise<{ index: number }> {
    if (this.#closed) throw new AttexError('ledger.closed', 'the ledger is closed');
    if (this.#held.lost) throw this.#lockLostError();
    if (!(entry instanceof Uint8Array)) throw new AttexError('ledger.invalid-argument', 'entry must be a Uint8Array');
    if (entry.length > MAX_ENTRY_SIZE) throw new AttexError('ledger.entry-too-large', `entry of ${entry.length} bytes exceeds ${MAX_ENTRY_SIZE} bytes (tlog-tiles entry bundle limit)`);
    const key = opts.key;
    if (key !== undefined) {
      if (typeof key !== 'string' || key.length === 0 || Buffer.byteLength(key) > MAX_KEY_BYTES || !key.isWellFormed()) {
        throw new AttexError('ledger.invalid-argument', `key must be a non-empty string of at most ${MAX_KEY_BYTES} UTF-8 bytes`);
      }
      if (this.#keys.has(key) || this.#pendingKeys.has(key)) throw new AttexError('ledger.duplicate-key', 'an entry with this key is already in the log');
      this.#pendingKeys.add(key);
    }
    const record = encodeEntryRecord(entry, key);
    try {
      const offset = await this.#writer.append(record, opts.checkpoint === true);
      const index = this.#indexAtOffset.get(offset)!;
      this.#indexAtOffset.delete(offset);
      return { index };
    } finally {
      if (key !== undefined) this.#pendingKeys.delete(key);
    }
  }

  // Index of each just-committed entry record, by file offset, until its appender picks it up.
  #indexAtOffset = new Map<number, number>();

  // Runs synchronously just before a batch that asked for a checkpoint is written: sign the
  // checkpoint of the tree as it will be once the batch is durable. Nobody sees it before then.
  #sealBatch(records: readonly Buffer[]): Buffer | undefined {
    this.#sealed = null;
    const hashes = entryLeafHashes(records);
    if (hashes.length === 0) return undefined;
    const size = this.#tree.size + hashes.length;
    const body = formatCheckpoint({ origin: this.origin, size, rootHash: this.#tree.rootWith(hashes), extensions: [] });
    const note = signNote(body, this.#signers);
    this.#sealed = { size, note, hashes };
    return encodeRecord(RECORD_COMMIT_CHECKPOINT, Buffer.from(note, 'utf8'));
  }

  // Runs synchronously after each batch's fsync, in file order: the entries join the tree, and
  // a checkpoint sealed into the batch becomes the latest published one.
  #integrateDurable(offsets: readonly number[], records: readonly Buffer[]): void {
    const sealed = this.#sealed;
    this.#sealed = null;
    const hashes = sealed?.hashes ?? entryLeafHashes(records);
    records.forEach((record, i) => {
      if (record[8] !== RECORD_ENTRY) return;
      const keyLength = record.readUInt16BE(9);
      const entryOffset = offsets[i]! + 11 + keyLength;
      const index = this.#offsets.length;
      this.#offsets.push(entryOffset);
      this.#lengths.push(record.length - 11 - keyLength);
      if (keyLength > 0) this.#keys.set(record.toString('utf8', 11, 11 + keyLength), index);
      this.#indexAtOffset.set(offsets[i]!, index);
    });
    this.#tree.append(hashes);
    if (sealed && records.at(-1)?.[8] === RECORD_COMMIT_CHECKPOINT) this.#adopt('commit', sealed.size, offsets.at(-1)!, sealed.note);
    if (hashes.length > 0) this.#schedulePublish();
  }

  /** Size of the checkpoint in the checkpoint file: that of the last type-2 record (-1: none yet). */
  get #fileSize(): number {
    return this.#published.last('file')?.size ?? -1;
  }

  /** Index a checkpoint just recorded at `recordOffset` in `seq`; it is the latest if it is the largest. */
  #adopt(kind: CheckpointKind, size: number, recordOffset: number, note: string): void {
    this.#published.add(kind, { size, offset: recordOffset + RECORD_HEADER_SIZE, length: Buffer.byteLength(note) });
    if (!this.#latest || size > this.#latest.size) this.#latest = { size, note };
  }

  /** Entry bytes at `index`. */
  async get(index: number): Promise<Uint8Array> {
    this.#checkIndex(index);
    const out = Buffer.alloc(this.#lengths[index]!);
    const { bytesRead } = await this.#read(out, this.#offsets[index]!);
    if (bytesRead !== out.length) throw new AttexError('ledger.corrupt', `seq: entry ${index} is cut short`);
    if (!bytesEqual(leafHash(out), this.#tree.node(0, index))) throw new AttexError('ledger.tampered', `seq: entry ${index} changed after the ledger was opened`);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }

  // Entries `start..start+count` with one read of the sequence span that holds them (they are in
  // file order, with only record headers and checkpoint records between them), each checked
  // against its leaf hash.
  async #readEntries(start: number, count: number): Promise<Uint8Array[]> {
    if (count === 0) return [];
    this.#checkIndex(start);
    this.#checkIndex(start + count - 1);
    const from = this.#offsets[start]!;
    const to = this.#offsets[start + count - 1]! + this.#lengths[start + count - 1]!;
    const span = Buffer.alloc(to - from);
    const { bytesRead } = await this.#read(span, from);
    if (bytesRead !== span.length) throw new AttexError('ledger.corrupt', `seq: entries ${start}..${start + count - 1} are cut short`);
    const out: Uint8Array[] = [];
    for (let i = start; i < start + count; i++) {
      const at = this.#offsets[i]! - from;
      const entry = new Uint8Array(span.buffer, span.byteOffset + at, this.#lengths[i]!);
      if (!bytesEqual(leafHash(entry), this.#tree.node(0, i))) throw new AttexError('ledger.tampered', `seq: entry ${i} changed after the ledger was opened`);
      out.push(entry);
    }
    return out;
  }

  /** Index of the entry appended with `key`, if any. */
  findByKey(key: string): number | undefined {
    return this.#keys.get(key);
  }

  /** The latest published checkpoint (signed note text). */
  checkpoint(): string {
    if (!this.#latest) throw new AttexError('ledger.closed', 'the ledger has no checkpoint');
    return this.#latest.note;
  }

  /** A previously published checkpoint of exactly `size`, if there was one (read back from `seq` and verified). */
  async checkpointAt(size: number): Promise<string | undefined> {
    if (this.#latest?.size === size) return this.#latest.note;
    const at = this.#published.find(size);
    return at === undefined ? undefined : this.#noteAt(at);
  }

  /** Sizes of every checkpoint this log has published, ascending. */
  publishedSizes(): number[] {
    return this.#published.sizes();
  }

  // `buffer.length` bytes of `seq` from `offset`; file errors are ledger.io, a closed ledger ledger.closed.
  async #read(buffer: Buffer, offset: number): Promise<{ bytesRead: number }> {
    if (this.#released) throw new AttexError('ledger.closed', 'the ledger is closed');
    try {
      return await this.#file.read(buffer, 0, buffer.length, offset);
    } catch (err) {
      throw toAttexError(err, 'ledger.io');
    }
  }

  // A recorded checkpoint note read back from `seq`, verified as open verifies the last ones.
  async #noteAt(at: NoteLocation): Promise<string> {
    const bytes = Buffer.alloc(at.length);
    const { bytesRead } = await this.#read(bytes, at.offset);
    const recordOffset = at.offset - RECORD_HEADER_SIZE;
    if (bytesRead !== at.length) throw new AttexError('ledger.corrupt', `seq: the checkpoint recorded at offset ${recordOffset} is cut short`);
    let note: string;
    try {
      note = STRICT_UTF8.decode(bytes);
    } catch {
      throw new AttexError('ledger.tampered', `seq: the checkpoint recorded at offset ${recordOffset} is no longer UTF-8`);
    }
    this.#verifyRecorded(note, at.size, recordOffset);
    return note;
  }

  // A recorded note must verify with this log's key and origin, and give the root of its size.
  #verifyRecorded(note: string, size: number, recordOffset: number): void {
    let cp: Checkpoint;
    try {
      cp = openCheckpoint(note, { logVerifierKey: this.#logVerifier, origin: this.origin }).checkpoint;
    } catch (err) {
      throw new AttexError('ledger.tampered', `seq: checkpoint recorded at offset ${recordOffset} does not verify with this log's key and origin (${(err as Error).message})`, { cause: err });
    }
    if (cp.size !== size || !bytesEqual(cp.rootHash, this.#tree.root(cp.size))) {
      throw new AttexError('ledger.tampered', `seq: the entries do not reproduce the root of the size-${cp.size} checkpoint recorded at offset ${recordOffset}`);
    }
  }

  rootHash(size: number = this.size): Uint8Array {
    return this.#tree.root(size);
  }

  inclusionProof(index: number, size: number = this.size): Uint8Array[] {
    return this.#tree.inclusionProof(index, size);
  }

  consistencyProof(oldSize: number, newSize: number = this.size): Uint8Array[] {
    return this.#tree.consistencyProof(oldSize, newSize);
  }

  /** Bytes of tlog-tiles hash tile `level`/`index` of `width` hashes, from the verified in-memory tree. */
  hashTile(level: number, index: number, width: number): Uint8Array {
    return this.#tree.nodes(8 * level, index * 256, width);
  }

  /**
   * A tlog-tiles resource (`tile/<L>/<N>[.p/<W>]` or `tile/entries/...`) of the latest published
   * checkpoint or an earlier one, derived from the verified tree and `seq`; undefined when the
   * path is not canonical or no published tree has it. Bytes equal what an export writes.
   */
  async tile(rel: string): Promise<Uint8Array | undefined> {
    return deriveTile(this.#tree, (s, c) => this.#readEntries(s, c), this.#latest?.size ?? 0, rel);
  }

  /**
   * c2sp.org/tlog-proof@v1 for `index` against the published checkpoint of `size` (default: the
   * latest, publishing a new one first when the latest does not cover `index` yet).
   */
  async tlogProof(index: number, size?: number): Promise<string> {
    this.#checkIndex(index);
    let note: string | undefined;
    let treeSize: number;
    if (size === undefined) {
      if (!this.#latest || this.#latest.size <= index) await this.publishCheckpoint();
      ({ note, size: treeSize } = this.#latest!);
    } else {
      note = await this.checkpointAt(size);
      if (note === undefined) throw new AttexError('ledger.invalid-argument', `no checkpoint of size ${size} was published`);
      treeSize = size;
    }
    if (index >= treeSize) throw new AttexError('ledger.invalid-argument', `index ${index} is not below the checkpoint size ${treeSize}`);
    return formatTlogProof({ index, proof: this.#tree.inclusionProof(index, treeSize), checkpoint: note });
  }

  /** Integrate the durable entries into tiles and publish a signed checkpoint covering them. */
  publishCheckpoint(): Promise<string> {
    const run = this.#publishing.then(() => this.#publish());
    this.#publishing = run.catch(() => undefined);
    return run;
  }

  // Bring the directory up to the durable tree: full tiles, then the checkpoint file, then its
  // type-2 record. Reuses the commit checkpoint of that size when there is one.
  async #publish(): Promise<string> {
    // Tiles, the checkpoint file and its record would land on another holder's files.
    if (this.#held.lost) throw this.#lockLostError();
    const size = this.#tree.size;
    // The latest checkpoint has the tree's size whenever one of that size was published.
    const current = this.#latest?.size === size ? this.#latest.note : undefined;
    if (this.#fileSize === size && current !== undefined) return current;
    try {
      await writeFullTiles(this.dir, path.join(this.dir, 'tmp'), this.#tree, (s, c) => this.#readEntries(s, c), this.#tilesSize, size);
      this.#tilesSize = size;
      // The lock may have been lost while the tiles were written: not the checkpoint file, then.
      if (this.#held.lost) throw this.#lockLostError();
      const note = current ?? signNote(formatCheckpoint({ origin: this.origin, size, rootHash: this.#tree.root(size), extensions: [] }), this.#signers);
      // Publish the file first, then record it in the sequence: a crash in between leaves a
      // checkpoint newer than the record, which open() re-records; a file older than the record is a rollback.
      await writeFileAtomic(path.join(this.dir, 'checkpoint'), note, path.join(this.dir, 'tmp'), true);
      const offset = await this.#writer.append(encodeRecord(RECORD_CHECKPOINT, Buffer.from(note, 'utf8')));
      this.#adopt('file', size, offset, note);
      return note;
    } catch (err) {
      throw toAttexError(err, 'ledger.io');
    }
  }

  #schedulePublish(): void {
    if (this.#interval <= 0 || this.#timer || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.publishCheckpoint().catch(() => undefined); // retried on the next append or on close
    }, this.#interval);
    this.#timer.unref();
  }

  /** Wait for pending appends, publish a final checkpoint, release the files. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    try {
      await this.#writer.drain();
      if (!this.#held.lost) await this.publishCheckpoint();
    } finally {
      this.#released = true;
      try {
        await this.#file.close();
      } finally {
        await this.#held.lock?.release();
      }
    }
  }

  #checkIndex(index: number): void {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.size) throw new AttexError('ledger.not-found', `no entry at index ${index} (size ${this.size})`);
  }

  // Cross-check the sequence, its recorded checkpoints, the checkpoint file and the tiles. The
  // last recorded checkpoint of each kind is verified here (the scan checked every record's size
  // and order); older notes are verified when read (#noteAt), so opening costs two signature
  // checks rather than one per group commit the log ever made. The root of the last one covers
  // every entry before it, so no entry can have changed under an older checkpoint either.
  async #recover(last: LastRecorded): Promise<void> {
    const { commit, file: lastFile } = last;
    for (const r of [commit, lastFile]) if (r) this.#verifyRecorded(r.note, r.size, r.offset);
    if (commit && lastFile && commit.size === lastFile.size && commit.note !== lastFile.note) {
      throw new AttexError('ledger.tampered', `seq: two different checkpoints of size ${commit.size} are recorded (offset ${lastFile.offset})`);
    }
    for (const r of [commit, lastFile]) if (r && (!this.#latest || r.size > this.#latest.size)) this.#latest = { size: r.size, note: r.note };
    const fileNote = await readFileIfExists(path.join(this.dir, 'checkpoint'), MAX_CHECKPOINT_FILE_BYTES);
    if (fileNote === null) {
      if (lastFile) throw new AttexError('ledger.rollback', `checkpoint file is missing but the log has published a checkpoint of size ${lastFile.size}`);
    } else {
      const text = fileNote.toString('utf8');
      let cp: Checkpoint;
      try {
        cp = openCheckpoint(text, { logVerifierKey: this.#logVerifier, origin: this.origin }).checkpoint;
      } catch (err) {
        throw new AttexError('ledger.tampered', `checkpoint file does not verify with this log's key and origin (${(err as Error).message})`, { cause: err });
      }
      if (lastFile && cp.size < lastFile.size) throw new AttexError('ledger.rollback', `checkpoint file has size ${cp.size}, below the published size ${lastFile.size}`);
      if (cp.size > this.size) throw new AttexError('ledger.rollback', `checkpoint file covers ${cp.size} entries but the sequence holds only ${this.size}: acknowledged entries are missing`);
      if (!bytesEqual(cp.rootHash, this.#tree.root(cp.size))) throw new AttexError('ledger.tampered', `checkpoint file root does not match the entries at size ${cp.size}`);
      const recordedAt = this.#published.find(cp.size);
      if (recordedAt !== undefined && text !== (await this.#noteAt(recordedAt))) throw new AttexError('ledger.tampered', 'checkpoint file differs from the checkpoint recorded at the same size');
      if (!lastFile || cp.size > lastFile.size) {
        // Published just before a crash, not yet recorded: record it now.
        const offset = await this.#writer.append(encodeRecord(RECORD_CHECKPOINT, Buffer.from(text, 'utf8')));
        this.#adopt('file', cp.size, offset, text);
      }
    }
    await verifyFullTiles(this.dir, path.join(this.dir, 'tmp'), this.#tree, (s, c) => this.#readEntries(s, c), this.size);
    this.#tilesSize = this.size;
    // After a crash the file may lag the commit checkpoints (or the entries): bring it up to date.
    if (this.#fileSize < this.size) await this.publishCheckpoint();
  }
}

/** The size line of a recorded checkpoint note, read without checking its signature (#recover does). */
function recordedSize(note: string, recordOffset: number): number {
  const size = Number(/^[^\n]+\n(0|[1-9][0-9]{0,15})\n/.exec(note)?.[1] ?? Number.NaN);
  if (!Number.isSafeInteger(size)) throw new AttexError('ledger.tampered', `seq: the checkpoint recorded at offset ${recordOffset} has no valid size line`);
  return size;
}

/** The last checkpoint record of each kind found in `seq`, with its note. */
interface LastRecorded {
  commit?: RecordedCheckpoint;
  file?: RecordedCheckpoint;
}

interface RecordedCheckpoint {
  readonly size: number;
  readonly note: string;
  /** File offset of the record. */
  readonly offset: number;
}

/**
 * Before a torn tail is cut off: if the checkpoint file claims more entries than the sequence
 * holds without the tail, the tail held acknowledged entries, and nothing may be cut.
 * (`#recover` verifies the checkpoint file fully; this only reads its size line.)
 */
async function refuseTruncatingAcknowledged(root: string, entriesKept: number): Promise<void> {
  const note = await readFileIfExists(path.join(root, 'checkpoint'), MAX_CHECKPOINT_FILE_BYTES);
  const size = note === null ? undefined : Number(/^[^\n]*\n(\d{1,20})\n/.exec(note.toString('utf8'))?.[1]);
  if (size !== undefined && Number.isSafeInteger(size) && size > entriesKept) {
    throw new AttexError('ledger.rollback', `seq ends in an incomplete record, but the checkpoint file covers ${size} entries and only ${entriesKept} precede it: acknowledged entries are damaged; nothing was truncated`);
  }
}

/** The ledger's directory lock, if it holds one, and whether it was lost while open. */
interface HeldLock {
  lock: StateDirLock | undefined;
  lost: boolean;
}
