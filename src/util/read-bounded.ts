/**
 * Reading a file that someone else wrote (evidence, collateral, bundles, trust and policy files,
 * the log's own files): only a regular file, and at most `maxBytes` of it. A FIFO would block a
 * plain open forever and /dev/zero would fill memory, so the file is opened non-blocking, what
 * was opened is checked with fstat (no window between a check and the open), and reading stops
 * one byte past the cap.
 *
 * Failures are Node-style errors with a `code` (ENOENT, EISDIR, ENOTREG for anything else that
 * is not a regular file, EFBIG past the cap), so callers keep mapping `code` into their own
 * stable error codes.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';

const FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

function refusal(file: string, stats: Stats, maxBytes: number): NodeJS.ErrnoException | undefined {
  const make = (code: string, message: string) => Object.assign(new Error(`${code}: ${message}: ${file}`), { code });
  if (stats.isDirectory()) return make('EISDIR', 'is a directory');
  if (!stats.isFile()) return make('ENOTREG', 'not a regular file');
  if (stats.size > maxBytes) return make('EFBIG', `larger than ${maxBytes} bytes`);
  return undefined;
}

function tooLarge(file: string, maxBytes: number): NodeJS.ErrnoException {
  return Object.assign(new Error(`EFBIG: larger than ${maxBytes} bytes: ${file}`), { code: 'EFBIG' });
}

/** Chunk size: the stat'ed size (plus one byte to see the end), at least 4 KiB, at most 1 MiB. */
function chunkSize(size: number, maxBytes: number): number {
  return Math.max(4096, Math.min(size + 1, maxBytes + 1, 1 << 20));
}

/**
 * The read loop both variants share: yields the free part of a buffer to read into, is given
 * back how many bytes arrived (0 at end of file), and returns the file's bytes. Stops one
 * chunk past the cap at most: a file that grows while being read is refused too.
 */
function* boundedRead(file: string, size: number, maxBytes: number): Generator<Buffer, Buffer, number> {
  const full: Buffer[] = [];
  let chunk = Buffer.alloc(chunkSize(size, maxBytes));
  let used = 0;
  let total = 0;
  for (;;) {
    const bytesRead = yield chunk.subarray(used);
    if (bytesRead === 0) break;
    used += bytesRead;
    total += bytesRead;
    if (total > maxBytes) throw tooLarge(file, maxBytes);
    if (used === chunk.length) {
      full.push(chunk);
      chunk = Buffer.alloc(chunkSize(size, maxBytes));
      used = 0;
    }
  }
  const last = chunk.subarray(0, used);
  return full.length === 0 ? last : Buffer.concat([...full, last], total);
}

export async function readBoundedFile(file: string, maxBytes: number): Promise<Buffer> {
  const handle = await open(file, FLAGS);
  try {
    const stats = await handle.stat();
    const refused = refusal(file, stats, maxBytes);
    if (refused) throw refused;
    const reader = boundedRead(file, stats.size, maxBytes);
    for (let step = reader.next(); ; ) {
      if (step.done) return step.value;
      step = reader.next((await handle.read(step.value, 0, step.value.length, null)).bytesRead);
    }
  } finally {
    await handle.close();
  }
}

export function readBoundedFileSync(file: string, maxBytes: number): Buffer {
  const fd = openSync(file, FLAGS);
  try {
    const stats = fstatSync(fd);
    const refused = refusal(file, stats, maxBytes);
    if (refused) throw refused;
    const reader = boundedRead(file, stats.size, maxBytes);
    for (let step = reader.next(); ; ) {
      if (step.done) return step.value;
      step = reader.next(readSync(fd, step.value, 0, step.value.length, null));
    }
  } finally {
    closeSync(fd);
  }
}
