/**
 * The embedded secret store: one file per resource in a directory, each an AES-256-GCM record
 * (fresh 96-bit nonce per write, AAD = the resource path) under the operator key. Plaintext is
 * never written to disk; writes are atomic (temp file + fsync + rename + directory fsync), so a
 * crash leaves either the old record or the new one.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, writeFileAtomic as writeFileAtomicShared } from '../../util/files.ts';
import { AttexError } from '../../errors/index.ts';
import { toHex, sha256 } from '../../util/index.ts';
import { parseResourcePath } from '../paths.ts';
import { OPERATOR_KEY_BYTES } from './operator-key.ts';

const RECORD_VERSION = 1;
const RECORD_SUFFIX = '.secret.json';
export const MAX_SECRET_BYTES = 1024 * 1024;

interface StoredRecord {
  readonly v: number;
  readonly path: string;
  readonly alg: 'A256GCM';
  readonly nonce: string;
  readonly ciphertext: string;
  readonly tag: string;
}

export interface SecretStore {
  get(resourcePath: string): Promise<Uint8Array | undefined>;
  has(resourcePath: string): Promise<boolean>;
  put(resourcePath: string, value: Uint8Array): Promise<void>;
  remove(resourcePath: string): Promise<boolean>;
  list(): Promise<string[]>;
}

export async function openSecretStore(dir: string, operatorKey: Uint8Array): Promise<SecretStore> {
  if (operatorKey.length !== OPERATOR_KEY_BYTES) throw new AttexError('broker.operator-key', 'the operator key must be 32 bytes');
  const key = Buffer.from(operatorKey);
  await mkdir(dir, { recursive: true, mode: 0o700 });

  const fileFor = (resourcePath: string) => path.join(dir, `${toHex(sha256(resourcePath))}${RECORD_SUFFIX}`);

  async function readRecord(file: string): Promise<StoredRecord | undefined> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new AttexError('broker.store-io', `cannot read a secret record: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    try {
      const rec = JSON.parse(text) as StoredRecord;
      if (rec.v !== RECORD_VERSION || rec.alg !== 'A256GCM' || typeof rec.path !== 'string') throw new Error('shape');
      return rec;
    } catch {
      throw new AttexError('broker.store-corrupt', `secret record ${path.basename(file)} is not a valid record`);
    }
  }

  return {
    async get(resourcePath) {
      parseResourcePath(resourcePath);
      const rec = await readRecord(fileFor(resourcePath));
      if (rec === undefined) return undefined;
      if (rec.path !== resourcePath) throw new AttexError('broker.store-corrupt', 'secret record names another resource path');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(rec.nonce, 'base64'));
        decipher.setAAD(Buffer.from(resourcePath, 'utf8'));
        decipher.setAuthTag(Buffer.from(rec.tag, 'base64'));
        return new Uint8Array(Buffer.concat([decipher.update(Buffer.from(rec.ciphertext, 'base64')), decipher.final()]));
      } catch {
        throw new AttexError('broker.store-decrypt', `secret ${resourcePath} does not decrypt under this operator key (wrong key or tampered record)`);
      }
    },

    async has(resourcePath) {
      parseResourcePath(resourcePath);
      return (await readRecord(fileFor(resourcePath))) !== undefined;
    },

    async put(resourcePath, value) {
      parseResourcePath(resourcePath);
      if (value.length > MAX_SECRET_BYTES) throw new AttexError('broker.secret-too-large', `a secret is at most ${MAX_SECRET_BYTES} bytes`);
      const nonce = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, nonce);
      cipher.setAAD(Buffer.from(resourcePath, 'utf8'));
      const ciphertext = Buffer.concat([cipher.update(value), cipher.final()]);
      const rec: StoredRecord = {
        v: RECORD_VERSION,
        path: resourcePath,
        alg: 'A256GCM',
        nonce: nonce.toString('base64'),
        ciphertext: ciphertext.toString('base64'),
        tag: cipher.getAuthTag().toString('base64'),
      };
      await writeFileAtomic(dir, fileFor(resourcePath), `${JSON.stringify(rec)}\n`);
    },

    async remove(resourcePath) {
      parseResourcePath(resourcePath);
      try {
        await unlink(fileFor(resourcePath));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw new AttexError('broker.store-io', `cannot remove a secret record: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
      }
      await fsyncDir(dir);
      return true;
    },

    async list() {
      const names = (await readdir(dir)).filter((n) => n.endsWith(RECORD_SUFFIX));
      const paths: string[] = [];
      for (const n of names) {
        const rec = await readRecord(path.join(dir, n));
        if (rec !== undefined) paths.push(rec.path);
      }
      return paths.sort();
    },
  };
}

/**
 * Crash-safe write of a broker state file (0600 by default: records, keys). `dir` is the file's
 * directory, kept in the signature for the callers that already hold it.
 */
export async function writeFileAtomic(dir: string, file: string, text: string, mode = 0o600): Promise<void> {
  await writeFileAtomicShared(path.resolve(dir, file), text, mode);
}
