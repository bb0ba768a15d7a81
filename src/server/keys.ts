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
import { type KeyObject, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { AttexError } from '../errors/index.ts';
import { writeFileAtomic, writeNewFile } from '../util/files.ts';

export const LOG_KEY_FILE = 'log-key.pem';
export const RECEIPT_PUBLIC_KEY_FILE = 'receipt-key.pub';

export { writeNewFile } from '../util/files.ts';

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
  await writeFileAtomic(file, `${Buffer.from(publicKeyRaw).toString('base64')}\n`);
  return file;
}
