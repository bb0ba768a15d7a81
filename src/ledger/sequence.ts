/**
 * The sequence file: the ledger's append-only source of truth. Tiles and the checkpoint file are
 * derived from it (and checked against it on open).
 *
 *   file    = MAGIC record*
 *   record  = u32be bodyLength | u32be crc32(type || body) | u8 type | body
 *   entry      (type 1): u16be keyLength | key (UTF-8) | entry bytes
 *   checkpoint (type 2): the signed checkpoint note, UTF-8
 *
 * Appends go through a group-commit writer: every record queued while a write+fsync is in flight
 * is written by the next single write and fsync, and nobody is told "durable" before that fsync.
 * A batch may be sealed: a last record computed from the batch (the ledger's checkpoint over the
 * batch's entries) joins the same write and fsync.
 */
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { AttexError } from '../errors/index.ts';
import { fsyncDirectory, isNotFound } from './files.ts';
import { leafHash } from './merkle.ts';

export const SEQUENCE_MAGIC = Buffer.from('attexsq1', 'latin1');
export const RECORD_ENTRY = 1;
export const RECORD_CHECKPOINT = 2;
/** A checkpoint signed in the same group commit as the entries it covers (not in the checkpoint file). */
export const RECORD_COMMIT_CHECKPOINT = 3;
/** Bytes before a record's body: length, CRC, type. */
export const RECORD_HEADER_SIZE = 9;
const HEADER_SIZE = RECORD_HEADER_SIZE;
const MAX_BODY = 1 << 20;

export function encodeRecord(type: number, body: Uint8Array): Buffer {
  if (body.length > MAX_BODY) throw new AttexError('ledger.invalid-argument', 'record too large');
  const out = Buffer.alloc(HEADER_SIZE + body.length);
  out.writeUInt32BE(body.length, 0);
  out[8] = type;
  out.set(body, HEADER_SIZE);
  out.writeUInt32BE(crc32(out.subarray(8)), 4);
  return out;
}

export function encodeEntryRecord(entry: Uint8Array, key: string | undefined): Buffer {
  const keyBytes = Buffer.from(key ?? '', 'utf8');
  const body = Buffer.alloc(2 + keyBytes.length + entry.length);
  body.writeUInt16BE(keyBytes.length, 0);
  keyBytes.copy(body, 2);
  body.set(entry, 2 + keyBytes.length);
  return encodeRecord(RECORD_ENTRY, body);
}

export interface ScannedEntry {
  /** File offset of the entry bytes. */
  readonly offset: number;
  readonly length: number;
  readonly key: string | undefined;
  /** The entry bytes: a view into the scan's buffer, valid only during the visitor call. */
  readonly entry: Uint8Array;
}

export interface ScanResult {
  /** Offset just past the last complete record; anything after it is a torn tail. */
  readonly validLength: number;
  readonly fileLength: number;
}

export interface ScanVisitor {
  entry(e: ScannedEntry): void;
  /** `inFile`: type 2, written to the checkpoint file before it was recorded; type 3 is record-only. */
  checkpoint(note: string, offset: number, inFile: boolean): void;
}

/**
 * Read the whole sequence file in chunks, calling the visitor for each record. A record cut off
 * by the end of the file is a torn tail (the caller truncates it); a complete record whose
 * checksum fails, or an impossible header, is corruption: `ledger.corrupt` naming file and offset.
 */
export async function scanSequence(file: FileHandle, path: string, visitor: ScanVisitor): Promise<ScanResult> {
  const { size: fileLength } = await file.stat();
  const corrupt = (offset: number, why: string): never => {
    throw new AttexError('ledger.corrupt', `${path}: ${why} at offset ${offset}`, { details: { file: path, offset } });
  };
  if (fileLength < SEQUENCE_MAGIC.length) {
    // Only a file whose creation was interrupted is this short; it holds no acknowledged data.
    return { validLength: 0, fileLength };
  }
  const magic = Buffer.alloc(SEQUENCE_MAGIC.length);
  await file.read(magic, 0, magic.length, 0);
  if (!magic.equals(SEQUENCE_MAGIC)) corrupt(0, 'not an attex sequence file (bad magic)');
  const chunkSize = 4 << 20;
  let buffer = Buffer.alloc(0);
  let bufferStart = SEQUENCE_MAGIC.length; // file offset of buffer[0]
  let readAt = SEQUENCE_MAGIC.length;
  let at = SEQUENCE_MAGIC.length; // offset of the next record
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (;;) {
    const rel = at - bufferStart;
    const haveHeader = buffer.length - rel >= HEADER_SIZE;
    const need = haveHeader ? HEADER_SIZE + buffer.readUInt32BE(rel) : HEADER_SIZE;
    if (haveHeader && need - HEADER_SIZE > MAX_BODY) corrupt(at, 'record length out of range');
    if (buffer.length - rel < need) {
      if (readAt >= fileLength) break; // torn tail (or clean end when rel == buffer.length)
      const chunk = Buffer.alloc(Math.max(chunkSize, need));
      const { bytesRead } = await file.read(chunk, 0, chunk.length, readAt);
      if (bytesRead === 0) break;
      buffer = Buffer.concat([buffer.subarray(rel), chunk.subarray(0, bytesRead)]);
      bufferStart = at;
      readAt += bytesRead;
      continue;
    }
    const record = buffer.subarray(rel, rel + need);
    if (crc32(record.subarray(8)) !== record.readUInt32BE(4)) corrupt(at, 'record checksum mismatch');
    const type = record[8];
    const body = record.subarray(HEADER_SIZE);
    if (type === RECORD_ENTRY) {
      if (body.length < 2) corrupt(at, 'entry record too short');
      const keyLength = body.readUInt16BE(0);
      if (2 + keyLength > body.length) corrupt(at, 'entry record key runs past the record');
      let key: string | undefined;
      try {
        key = keyLength === 0 ? undefined : decoder.decode(body.subarray(2, 2 + keyLength));
      } catch {
        corrupt(at, 'entry key is not UTF-8');
      }
      const entry = body.subarray(2 + keyLength);
      visitor.entry({ offset: at + HEADER_SIZE + 2 + keyLength, length: entry.length, key, entry });
    } else if (type === RECORD_CHECKPOINT || type === RECORD_COMMIT_CHECKPOINT) {
      let note = '';
      try {
        note = decoder.decode(body);
      } catch {
        corrupt(at, 'checkpoint record is not UTF-8');
      }
      visitor.checkpoint(note, at, type === RECORD_CHECKPOINT);
    } else {
      corrupt(at, `unknown record type ${type}`);
    }
    at += need;
  }
  if (at < fileLength) await assertTornTail(file, path, at, fileLength, corrupt);
  return { validLength: at, fileLength };
}

/** A torn tail is at most one group commit's write; a longer one is not a crash's leftover. */
const MAX_TORN_TAIL = 64 << 20;

/**
 * The bytes from `at` to the end hold an incomplete record. That is a torn tail (an interrupted,
 * never acknowledged write) only if nothing after it was committed: a complete, checksummed
 * checkpoint record further on means a later commit finished, so the incomplete record is a
 * damaged one (say, a corrupted length) in the middle of acknowledged data, and cutting the file
 * there would drop acknowledged entries and let the log sign a fork. That is `ledger.corrupt`.
 */
async function assertTornTail(file: FileHandle, path: string, at: number, fileLength: number, corrupt: (offset: number, why: string) => never): Promise<void> {
  const length = fileLength - at;
  if (length > MAX_TORN_TAIL) corrupt(at, `an incomplete record is followed by ${length} bytes, more than one interrupted write leaves`);
  const tail = Buffer.alloc(length);
  await file.read(tail, 0, length, at);
  // Each candidate costs a checksum over its claimed body. A crashed write holds few if any, but
  // bytes written to look like candidates at every offset would make this quadratic (seconds for
  // a 1 MiB tail): past a budget linear in the tail, the tail is not told apart and nothing is cut.
  let budget = 4 * length + (1 << 20);
  for (let rel = 1; rel + HEADER_SIZE <= length; rel++) {
    const type = tail[rel + 8];
    if (type !== RECORD_CHECKPOINT && type !== RECORD_COMMIT_CHECKPOINT) continue;
    const bodyLength = tail.readUInt32BE(rel);
    if (bodyLength === 0 || bodyLength > MAX_BODY || rel + HEADER_SIZE + bodyLength > length) continue;
    budget -= bodyLength;
    if (budget < 0) corrupt(at, 'an incomplete record is followed by more checkpoint-like records than a torn write holds: not cut');
    if (crc32(tail.subarray(rel + 8, rel + HEADER_SIZE + bodyLength)) === tail.readUInt32BE(rel + 4)) {
      corrupt(at, `an incomplete record is followed by a complete checkpoint record at offset ${at + rel}: not a torn tail`);
    }
  }
}

interface Pending {
  readonly record: Buffer;
  readonly seal: boolean;
  readonly resolve: (offset: number) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Group commit over one append-only file. `append` resolves with the record's file offset only
 * after its write is durable (O_DSYNC, or an fdatasync after it). `onDurable` runs
 * synchronously, in file order, for each batch before any of its promises resolve. After an I/O
 * error the writer is failed: the file state is unknown, so every later append is refused.
 */
export class GroupCommitWriter {
  #file: FileHandle;
  #end: number;
  #queue: Pending[] = [];
  #flushing: Promise<void> | null = null;
  #failure: AttexError | null = null;
  readonly #onDurable: (offsets: readonly number[], records: readonly Buffer[]) => void;
  readonly #seal: ((records: readonly Buffer[]) => Buffer | undefined) | undefined;
  readonly #refusal: (() => Error | undefined) | undefined;

  /**
   * `seal`, when an append of the batch asked for it, runs synchronously just before the batch is
   * written and may return one more record for the same write and fsync (it sees only records
   * of earlier batches as durable). `onDurable` receives the sealed record last. `refusal`, asked
   * before each batch, may refuse it: the batch then fails with that error and nothing is written.
   */
  constructor(
    file: FileHandle,
    end: number,
    onDurable: (offsets: readonly number[], records: readonly Buffer[]) => void,
    seal?: (records: readonly Buffer[]) => Buffer | undefined,
    refusal?: () => Error | undefined,
  ) {
    this.#file = file;
    this.#end = end;
    this.#onDurable = onDurable;
    this.#seal = seal;
    this.#refusal = refusal;
  }

  get end(): number {
    return this.#end;
  }

  /** Batches written (one durable write each) and records in them, for group-commit checks. */
  readonly stats = { batches: 0, records: 0 };

  /** Resolves with the record's offset once durable; `seal` asks for the batch to be sealed. */
  append(record: Buffer, seal = false): Promise<number> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise<number>((resolve, reject) => {
      this.#queue.push({ record, seal, resolve, reject });
      if (!this.#flushing) this.#flushing = this.#flushLoop();
    });
  }

  /** Resolves once everything queued so far is durable (or failed). */
  async drain(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  async #flushLoop(): Promise<void> {
    // Let appends issued in the same tick join the first batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      const refused = this.#refusal?.();
      if (refused) {
        for (const p of batch) p.reject(refused);
        continue;
      }
      const offsets: number[] = [];
      const records = batch.map((p) => p.record);
      let at = this.#end;
      // Sealing signs a checkpoint: if that fails, nothing was written, so only this batch fails
      // and the writer stays usable.
      if (this.#seal && !this.#failure && batch.some((p) => p.seal)) {
        let sealed: Buffer | undefined;
        try {
          sealed = this.#seal(records);
        } catch (err) {
          const failure = new AttexError('ledger.sign', `the batch's checkpoint could not be signed; nothing was written: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
          for (const p of batch) p.reject(failure);
          continue;
        }
        if (sealed) records.push(sealed);
      }
      try {
        if (this.#failure) throw this.#failure;
        for (const record of records) {
          offsets.push(at);
          at += record.length;
        }
        const data = records.length === 1 ? records[0]! : Buffer.concat(records);
        let written = 0;
        while (written < data.length) {
          const { bytesWritten } = await this.#file.write(data, written, data.length - written, this.#end + written);
          written += bytesWritten;
        }
        if (!SEQUENCE_DSYNC) await this.#file.datasync();
        this.#end = at;
        this.stats.batches++;
        this.stats.records += records.length;
        this.#onDurable(offsets, records);
      } catch (err) {
        this.#failure ??= new AttexError('ledger.io', `sequence write failed; the ledger must be reopened: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        for (const p of batch) p.reject(this.#failure);
        continue;
      }
      batch.forEach((p, i) => p.resolve(offsets[i]!));
    }
    this.#flushing = null;
  }
}

/** Leaf hashes of the entry records of a batch, in order. */
export function entryLeafHashes(records: readonly Buffer[]): Uint8Array[] {
  const hashes: Uint8Array[] = [];
  for (const record of records) {
    if (record[8] !== RECORD_ENTRY) continue;
    hashes.push(leafHash(record.subarray(11 + record.readUInt16BE(9))));
  }
  return hashes;
}

/**
 * Where the platform has O_DSYNC (Linux, macOS, the BSDs) the sequence file is opened with it:
 * each write then returns only once its data is durable, as write + fdatasync would, in one
 * thread-pool round trip instead of two (~60 µs less CPU per batch and lower commit latency).
 */
const SEQUENCE_DSYNC = typeof constants.O_DSYNC === 'number' && constants.O_DSYNC !== 0;
const DSYNC_FLAG = SEQUENCE_DSYNC ? constants.O_DSYNC : 0;

/** Open (or create, durably) the sequence file; writes to it are durable on return (SEQUENCE_DSYNC). */
export async function openSequenceFile(seqPath: string, dir: string): Promise<FileHandle> {
  try {
    return await open(seqPath, constants.O_RDWR | DSYNC_FLAG);
  } catch (err) {
    if (!isNotFound(err)) throw new AttexError('ledger.io', `cannot open ${path.basename(seqPath)}: ${(err as Error).message}`, { cause: err });
  }
  const file = await open(seqPath, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | DSYNC_FLAG, 0o600);
  await file.write(SEQUENCE_MAGIC, 0, SEQUENCE_MAGIC.length, 0);
  await file.sync();
  await fsyncDirectory(dir);
  return file;
}
