/** Small durable-file helpers: fsync of files and directories, write-to-temporary-then-rename. */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { AttexError } from '../errors/index.ts';
import { readBoundedFile } from '../util/index.ts';

/** fsync a directory so that entries created or renamed in it survive a power loss. */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Write `data` to `target` so that readers see either the old file or the complete new one:
 * write a temporary file in `tmpDir` (same file system), fsync it, rename it into place and,
 * when `syncDir` is set, fsync the target's directory.
 */
export async function writeFileAtomic(target: string, data: Uint8Array | string, tmpDir: string, syncDir: boolean): Promise<void> {
  await mkdir(path.dirname(target), { recursive: true });
  const tmp = path.join(tmpDir, `${randomBytes(8).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  await rename(tmp, target);
  if (syncDir) await fsyncDirectory(path.dirname(target));
}

/**
 * A file of the log directory, or null if it does not exist. Only a regular file of at most
 * `maxBytes` is read: a FIFO or a link to /dev/zero planted in the directory fails (ENOTREG,
 * EFBIG) instead of hanging the open or filling memory.
 */
export async function readFileIfExists(file: string, maxBytes: number): Promise<Buffer | null> {
  try {
    return await readBoundedFile(file, maxBytes);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ENOTREG' || code === 'EISDIR' || code === 'EFBIG') {
      throw new AttexError('ledger.tampered', `${path.basename(file)} in the log directory is ${code === 'EFBIG' ? `larger than ${maxBytes} bytes` : 'not a regular file'}`);
    }
    throw err;
  }
}

export function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
