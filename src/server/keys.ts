/**
 * The executor's two keys and why they differ:
 *
 * - The LOG key signs checkpoints of the transparency log. It is the log's identity: verifiers
 *   pin its verifier key (vkey) and every checkpoint, old or new, must verify under it, so it
 *   must survive restarts. It is persisted in the state directory (PKCS#8 PEM, mode 0600).
 * - The RECEIPT key signs execution receipts. It is generated in memory at every boot, never
 *   written, and bound into that boot's hardware evidence (report_data); the attestation record
 *   in the log publishes the binding. A receipt therefore proves it was signed inside an attested
 *   TEE, which a persisted key (readable by whoever holds the disk) could not prove.
 */
import { type KeyObject, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { AttexError } from '../errors/index.ts';

export const LOG_KEY_FILE = 'log-key.pem';
export const RECEIPT_PUBLIC_KEY_FILE = 'receipt-key.pub';

async function fsyncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** Write a new file atomically with `mode`; never replaces an existing file (link refuses to). */
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

/** Load the log key from `stateDir`, creating it (0600) on first start. */
export async function loadOrCreateLogKey(stateDir: string): Promise<{ privateKey: KeyObject; created: boolean }> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const file = path.join(stateDir, LOG_KEY_FILE);
  let pem: Buffer | undefined;
  try {
    pem = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new AttexError('executor.log-key', `cannot read the log key ${LOG_KEY_FILE}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  if (pem === undefined) {
    const { privateKey } = generateKeyPairSync('ed25519');
    try {
      await writeNewFile(file, privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, 0o600);
      return { privateKey, created: true };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new AttexError('executor.log-key', `cannot write the log key: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
      pem = await readFile(file); // another process created it first: use theirs
    }
  }
  const mode = (await stat(file)).mode & 0o777;
  if ((mode & 0o077) !== 0) await chmod(file, 0o600); // tighten a key someone loosened
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    throw new AttexError('executor.log-key', `${LOG_KEY_FILE} is not a PEM private key`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new AttexError('executor.log-key', `${LOG_KEY_FILE} is not an Ed25519 key`);
  return { privateKey, created: false };
}

/** Publish this boot's receipt PUBLIC key (for `attex ledger export --executor-pub`). */
export async function writeReceiptPublicKey(stateDir: string, publicKeyRaw: Uint8Array): Promise<string> {
  const file = path.join(stateDir, RECEIPT_PUBLIC_KEY_FILE);
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(tmp, 'w', 0o644);
  try {
    await handle.writeFile(`${Buffer.from(publicKeyRaw).toString('base64')}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
  return file;
}
