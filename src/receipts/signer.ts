/**
 * The executor's receipt signer, on libsodium (src/ed25519). The signer exposes only the public
 * half; the secret key stays in the KeyObject and in libsodium's guarded memory.
 */
import { type KeyObject, generateKeyPairSync } from 'node:crypto';
import { ed25519KeyFromSeed, ed25519PublicKeyBytes, ed25519Signer } from '../ed25519/index.ts';
import { AttexError } from '../errors/index.ts';
import type { ReceiptSigner } from './dsse.ts';
import { sslibKeyId } from './ed25519.ts';

export function createReceiptSigner(privateKey?: KeyObject): ReceiptSigner {
  const key = privateKey ?? generateKeyPairSync('ed25519').privateKey;
  if (key.type !== 'private' || key.asymmetricKeyType !== 'ed25519') {
    throw new AttexError('receipt.key', 'receipt signer needs an Ed25519 private key');
  }
  const signer = ed25519Signer(key);
  const publicKeyRaw = signer.publicKey;
  const keyId = sslibKeyId(publicKeyRaw);
  return { publicKeyRaw, keyId, sign: (message: Uint8Array) => signer.sign(message) };
}

/** The raw 32 bytes of an Ed25519 public KeyObject. */
export function rawEd25519PublicKey(publicKey: KeyObject): Uint8Array {
  const raw = ed25519PublicKeyBytes(publicKey);
  if (raw === undefined) throw new AttexError('receipt.key', 'not an Ed25519 key');
  return raw;
}

/** An Ed25519 private KeyObject from its 32-byte seed (RFC 8032 secret key). */
export function ed25519PrivateKeyFromSeed(seed: Uint8Array): KeyObject {
  const key = ed25519KeyFromSeed(seed);
  if (key === undefined) throw new AttexError('receipt.key', 'Ed25519 seed must be 32 bytes');
  return key;
}
