/**
 * The embedded ledger store. Directory layout (the public tlog-tiles layout plus a sequence file):
 *
 *   seq                      append-only sequence of entries and published checkpoints (source of truth)
 *   checkpoint               latest published checkpoint (signed note)
 *   tile/<L>/<N>[.p/<W>]     hash tiles for the latest checkpoint
 *   tile/entries/<N>[.p/<W>] entry bundles for the latest checkpoint
 *   tmp/                     temporaries of atomic writes (cleared on open)
 *
 * Appending makes an entry durable in `seq` (group commit); integrating (writing tiles, signing a
 * checkpoint) is a separate, later step. See docs/ledger.md for the recovery and tamper rules.
 */
import type { KeyObject } from 'node:crypto';
import { type FileHandle, mkdir, open, rm } from 'node:fs/promises';
import path from 'node:path';
import { AttexError, toAttexError } from '../errors/index.ts';
import { bytesEqual } from '../util/index.ts';
import { type Checkpoint, formatCheckpoint, openCheckpoint } from './checkpoint.ts';
import { fsyncDirectory, isNotFound, readFileIfExists, writeFileAtomic } from './files.ts';
import { HashTree } from './hash-tree.ts';
import { leafHash } from './merkle.ts';
import { type NoteSigner, type NoteVerifier, createNoteSigner, formatVerifierKey, parseVerifierKey, signNote } from './note.ts';
import { GroupCommitWriter, RECORD_CHECKPOINT, SEQUENCE_MAGIC, encodeEntryRecord, encodeRecord, scanSequence } from './sequence.ts';
import { integrateTiles, verifyTiles } from './tile-sync.ts';
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
}

const MAX_KEY_BYTES = 1024;

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
  #published = new Map<number, string>();
  #latest: { size: number; note: string } | null = null;
  #publishing: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | null = null;
  #interval: number;
  #closed = false;

  private constructor(dir: string, file: FileHandle, end: number, opts: LedgerOptions, recoveredTailBytes: number) {
    this.dir = dir;
    this.#file = file;
    const logSigner = createNoteSigner(opts.signer.name, opts.signer.privateKey);
    this.#signers = [logSigner, ...(opts.witnesses ?? [])];
    this.verifierKey = formatVerifierKey(logSigner.name, logSigner.publicKey);
    this.#logVerifier = parseVerifierKey(this.verifierKey);
    this.witnessVerifierKeys = (opts.witnesses ?? []).map((w) => formatVerifierKey(w.name, w.publicKey, w.type));
    this.origin = opts.origin ?? opts.signer.name;
    this.#interval = opts.checkpointInterval ?? 1000;
    this.recoveredTailBytes = recoveredTailBytes;
    this.#writer = new GroupCommitWriter(file, end, (offsets, records) => this.#integrateDurable(offsets, records));
  }

  static async open(dir: string, opts: LedgerOptions): Promise<Ledger> {
    if (!opts?.signer?.privateKey) throw new AttexError('ledger.invalid-argument', 'Ledger.open needs a signer { name, privateKey }');
    const origin = opts.origin ?? opts.signer.name;
    if (!origin || /[\n\r]/.test(origin)) throw new AttexError('ledger.invalid-argument', 'origin must be one non-empty line');
    if (opts.checkpointInterval !== undefined && !(Number.isFinite(opts.checkpointInterval) && opts.checkpointInterval >= 0)) {
      throw new AttexError('ledger.invalid-argument', 'checkpointInterval must be a non-negative number of milliseconds');
    }
    createNoteSigner(opts.signer.name, opts.signer.privateKey); // validates the key before touching the disk
    const root = path.resolve(dir);
    const created = await mkdir(root, { recursive: true });
    if (created !== undefined) await fsyncDirectory(path.dirname(root));
    await rm(path.join(root, 'tmp'), { recursive: true, force: true });
    await mkdir(path.join(root, 'tmp'));
    const seqPath = path.join(root, 'seq');
    const file = await openSequenceFile(seqPath, root);
    try {
      const entries: { offset: number; length: number; key: string | undefined; hash: Uint8Array }[] = [];
      const recorded: { note: string; offset: number; entriesBefore: number }[] = [];
      const scan = await scanSequence(file, 'seq', {
        entry: (e) => entries.push({ offset: e.offset, length: e.length, key: e.key, hash: leafHash(e.entry) }),
        checkpoint: (note, offset) => recorded.push({ note, offset, entriesBefore: entries.length }),
      });
      let end = scan.validLength;
      if (end < SEQUENCE_MAGIC.length) {
        await file.truncate(0);
        await file.write(SEQUENCE_MAGIC, 0, SEQUENCE_MAGIC.length, 0);
        end = SEQUENCE_MAGIC.length;
        await file.sync();
      } else if (scan.validLength < scan.fileLength) {
        await file.truncate(scan.validLength);
        await file.sync();
      }
      const ledger = new Ledger(root, file, end, opts, Math.max(0, scan.fileLength - end));
      ledger.#tree.append(entries.map((e) => e.hash));
      entries.forEach((e, index) => {
        ledger.#offsets.push(e.offset);
        ledger.#lengths.push(e.length);
        if (e.key !== undefined) ledger.#keys.set(e.key, index);
      });
      await ledger.#recover(recorded);
      return ledger;
    } catch (err) {
      await file.close().catch(() => undefined);
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

  /** Append one entry (≤ 65,535 bytes); resolves once it is durable on disk. */
  async append(entry: Uint8Array, opts: { key?: string } = {}): Promise<{ index: number }> {
    if (this.#closed) throw new AttexError('ledger.closed', 'the ledger is closed');
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
      const offset = await this.#writer.append(record);
      const index = this.#indexAtOffset.get(offset)!;
      this.#indexAtOffset.delete(offset);
      return { index };
    } finally {
      if (key !== undefined) this.#pendingKeys.delete(key);
    }
  }

  // Index of each just-committed entry record, by file offset, until its appender picks it up.
  #indexAtOffset = new Map<number, number>();

  // Runs synchronously after each batch's fsync, in file order: the entries join the tree.
  #integrateDurable(offsets: readonly number[], records: readonly Buffer[]): void {
    const hashes: Uint8Array[] = [];
    records.forEach((record, i) => {
      if (record[8] !== 1) return;
      const keyLength = record.readUInt16BE(9);
      const entryOffset = offsets[i]! + 11 + keyLength;
      const index = this.#offsets.length;
      this.#offsets.push(entryOffset);
      this.#lengths.push(record.length - 11 - keyLength);
      if (keyLength > 0) this.#keys.set(record.toString('utf8', 11, 11 + keyLength), index);
      this.#indexAtOffset.set(offsets[i]!, index);
      hashes.push(leafHash(record.subarray(11 + keyLength)));
    });
    this.#tree.append(hashes);
    if (hashes.length > 0) this.#schedulePublish();
  }

  /** Entry bytes at `index`. */
  async get(index: number): Promise<Uint8Array> {
    this.#checkIndex(index);
    const out = Buffer.alloc(this.#lengths[index]!);
    const { bytesRead } = await this.#file.read(out, 0, out.length, this.#offsets[index]!);
    if (bytesRead !== out.length) throw new AttexError('ledger.corrupt', `seq: entry ${index} is cut short`);
    if (!bytesEqual(leafHash(out), this.#tree.node(0, index))) throw new AttexError('ledger.tampered', `seq: entry ${index} changed after the ledger was opened`);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }

  async #readEntries(start: number, count: number): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    for (let i = start; i < start + count; i++) out.push(await this.get(i));
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

  /** A previously published checkpoint of exactly `size`, if there was one. */
  checkpointAt(size: number): string | undefined {
    return this.#published.get(size);
  }

  /** Sizes of every checkpoint this log has published, ascending. */
  publishedSizes(): number[] {
    return [...this.#published.keys()].sort((a, b) => a - b);
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
      note = this.#published.get(size);
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

  async #publish(): Promise<string> {
    const size = this.#tree.size;
    if (this.#latest && this.#latest.size === size) return this.#latest.note;
    const previous = this.#latest?.size ?? 0;
    const removeStale = await integrateTiles(this.dir, path.join(this.dir, 'tmp'), this.#tree, (s, c) => this.#readEntries(s, c), previous, size);
    const body = formatCheckpoint({ origin: this.origin, size, rootHash: this.#tree.root(size), extensions: [] });
    const note = signNote(body, this.#signers);
    // Publish the file first, then record it in the sequence: a crash in between leaves a
    // checkpoint newer than the record, which open() re-records; a file older than the record is a rollback.
    await writeFileAtomic(path.join(this.dir, 'checkpoint'), note, path.join(this.dir, 'tmp'), true);
    await this.#writer.append(encodeRecord(RECORD_CHECKPOINT, Buffer.from(note, 'utf8')));
    this.#published.set(size, note);
    this.#latest = { size, note };
    await removeStale();
    return note;
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
      await this.publishCheckpoint();
    } finally {
      await this.#file.close();
    }
  }

  #checkIndex(index: number): void {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.size) throw new AttexError('ledger.not-found', `no entry at index ${index} (size ${this.size})`);
  }

  // Cross-check the sequence, its recorded checkpoints, the checkpoint file and the tiles.
  async #recover(recorded: readonly { note: string; offset: number; entriesBefore: number }[]): Promise<void> {
    const trust = { logVerifierKey: this.#logVerifier, origin: this.origin };
    let last: Checkpoint | null = null;
    for (const r of recorded) {
      let cp: Checkpoint;
      try {
        cp = openCheckpoint(r.note, trust).checkpoint;
      } catch (err) {
        throw new AttexError('ledger.tampered', `seq: checkpoint recorded at offset ${r.offset} does not verify with this log's key and origin (${(err as Error).message})`, { cause: err });
      }
      if (cp.size > r.entriesBefore || (last && cp.size < last.size)) throw new AttexError('ledger.tampered', `seq: checkpoint recorded at offset ${r.offset} has size ${cp.size}, out of order`);
      if (!bytesEqual(cp.rootHash, this.#tree.root(cp.size))) throw new AttexError('ledger.tampered', `seq: the entries do not reproduce the root of the size-${cp.size} checkpoint recorded at offset ${r.offset}`);
      this.#published.set(cp.size, r.note);
      this.#latest = { size: cp.size, note: r.note };
      last = cp;
    }
    const fileNote = await readFileIfExists(path.join(this.dir, 'checkpoint'));
    if (fileNote === null) {
      if (last) throw new AttexError('ledger.rollback', `checkpoint file is missing but the log has published a checkpoint of size ${last.size}`);
    } else {
      const text = fileNote.toString('utf8');
      let cp: Checkpoint;
      try {
        cp = openCheckpoint(text, trust).checkpoint;
      } catch (err) {
        throw new AttexError('ledger.tampered', `checkpoint file does not verify with this log's key and origin (${(err as Error).message})`, { cause: err });
      }
      if (last && cp.size < last.size) throw new AttexError('ledger.rollback', `checkpoint file has size ${cp.size}, below the published size ${last.size}`);
      if (cp.size > this.size) throw new AttexError('ledger.rollback', `checkpoint file covers ${cp.size} entries but the sequence holds only ${this.size}: acknowledged entries are missing`);
      if (!bytesEqual(cp.rootHash, this.#tree.root(cp.size))) throw new AttexError('ledger.tampered', `checkpoint file root does not match the entries at size ${cp.size}`);
      if (last && cp.size === last.size && text !== this.#latest!.note) throw new AttexError('ledger.tampered', 'checkpoint file differs from the checkpoint recorded at the same size');
      if (!last || cp.size > last.size) {
        // Published just before a crash, not yet recorded: record it now.
        await this.#writer.append(encodeRecord(RECORD_CHECKPOINT, Buffer.from(text, 'utf8')));
        this.#published.set(cp.size, text);
        this.#latest = { size: cp.size, note: text };
      }
    }
    if (this.#latest) await verifyTiles(this.dir, path.join(this.dir, 'tmp'), this.#tree, (s, c) => this.#readEntries(s, c), this.#latest.size);
    if (!this.#latest || this.#latest.size < this.size) await this.publishCheckpoint();
  }
}

async function openSequenceFile(seqPath: string, dir: string): Promise<FileHandle> {
  try {
    return await open(seqPath, 'r+');
  } catch (err) {
    if (!isNotFound(err)) throw new AttexError('ledger.io', `cannot open ${path.basename(seqPath)}: ${(err as Error).message}`, { cause: err });
  }
  const file = await open(seqPath, 'wx+', 0o600);
  await file.write(SEQUENCE_MAGIC, 0, SEQUENCE_MAGIC.length, 0);
  await file.sync();
  await fsyncDirectory(dir);
  return file;
}
