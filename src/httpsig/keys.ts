import { type KeyObject, createPublicKey } from 'node:crypto';
import { AttexError } from '../errors/index.ts';

/** Loads an Ed25519 public key from PEM, raw base64 (32 bytes) or hex. */
export function ed25519PublicKey(text: string): KeyObject {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN')) return createPublicKey(trimmed);
  const raw = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  if (raw.length !== 32) throw new AttexError('auth.bad-key', 'an Ed25519 public key is 32 bytes (PEM, base64 or hex)');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}
