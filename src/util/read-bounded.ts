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

export async function readBoundedFile(file: string, maxBytes: number): Promise<Buffer> {
  const handle = await open(file, FLAGS);
  try {
    const stats = await handle.stat();
    const refused = refusal(file, stats, maxBytes);
    if (refused) throw refused;
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.alloc(chunkSize(stats.size, maxBytes));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > maxBytes) throw tooLarge(file, maxBytes); // it grew while being read
      chunks.push(chunk.subarray(0, bytesRead));
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
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
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.alloc(chunkSize(stats.size, maxBytes));
      const bytesRead = readSync(fd, chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > maxBytes) throw tooLarge(file, maxBytes);
      chunks.push(chunk.subarray(0, bytesRead));
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}
