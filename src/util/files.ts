/**
 * Crash-safe file writes shared by every module that persists state (keys, collateral caches,
 * bundles): a reader sees the old file, the new file, or nothing, never a torn one. Write to a
 * temporary name in the same directory, fsync it, rename (or link) it into place, then fsync the
 * directory so the name itself is durable.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdtemp, open, rename, rm, unlink } from 'node:fs/promises';
import path from 'node:path';

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeAndSync(file: string, data: Uint8Array | string, flags: string, mode = 0o644): Promise<void> {
  const handle = await open(file, flags, mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Replace (or create) `file` atomically; `mode` 0600 for secrets and private keys. */
export async function writeFileAtomic(file: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeAndSync(temp, data, 'wx', mode);
    await rename(temp, file);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dir);
}

/**
 * Create directory `dir` holding exactly `files`, atomically: the files are written and synced
 * in a temporary sibling directory that is then renamed to `dir`. Fails (leaving nothing
 * behind) if `dir` exists and is not empty.
 */
export async function writeDirAtomic(dir: string, files: ReadonlyMap<string, Uint8Array | string>): Promise<void> {
  const parent = path.dirname(path.resolve(dir));
  const temp = await mkdtemp(path.join(parent, `.${path.basename(dir)}.tmp-`));
  try {
    for (const [name, data] of files) {
      if (name !== path.basename(name) || name.startsWith('.')) throw new Error(`invalid file name in bundle: ${name}`);
      await writeAndSync(path.join(temp, name), data, 'wx');
    }
    await fsyncDir(temp);
    await rename(temp, dir);
  } catch (err) {
    await rm(temp, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  await fsyncDir(parent);
}

/**
 * Create `file` atomically with `mode` (0600 for private keys); never replaces an existing file:
 * a hard link, unlike rename, refuses an existing target (EEXIST).
 */
export async function writeNewFile(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(tmp, file);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  await fsyncDir(dir);
}
