/**
 * The operator key that encrypts the secret store at rest: 32 bytes, given as 64 hex digits or
 * base64/base64url of 32 bytes, from `ATTEX_BROKER_KEY` or a key file (which may also hold the
 * 32 raw bytes). The key's value is never echoed in an error.
 */
import { readFile } from 'node:fs/promises';
import { AttexError } from '../../errors/index.ts';

export const OPERATOR_KEY_BYTES = 32;

export function parseOperatorKey(text: string): Uint8Array {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return new Uint8Array(Buffer.from(t, 'hex'));
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) {
    const bytes = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (bytes.length === OPERATOR_KEY_BYTES) return new Uint8Array(bytes);
  }
  throw new AttexError('broker.operator-key', 'the operator key must be 32 bytes as 64 hex digits or base64');
}

/** Resolve the operator key: an explicit key file wins over the environment variable. */
export async function loadOperatorKey(opts: { keyFile?: string | undefined; env: NodeJS.ProcessEnv }): Promise<Uint8Array> {
  if (opts.keyFile !== undefined) {
    let raw: Buffer;
    try {
      raw = await readFile(opts.keyFile);
    } catch (err) {
      throw new AttexError('broker.operator-key', `cannot read the key file: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    if (raw.length === OPERATOR_KEY_BYTES) return new Uint8Array(raw);
    return parseOperatorKey(raw.toString('utf8'));
  }
  const fromEnv = opts.env['ATTEX_BROKER_KEY'];
  if (fromEnv === undefined || fromEnv.trim() === '') {
    throw new AttexError('broker.operator-key', 'no operator key: set ATTEX_BROKER_KEY or pass --key-file');
  }
  return parseOperatorKey(fromEnv);
}
