/**
 * The executor's receipt signer, on libsodium (src/ed25519). The signer exposes only the public
 * half; the secret key stays in the KeyObject and in libsodium's guarded memory.
 */
import { type KeyObject, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { ed25519Signer } from '../ed25519/index.ts';
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
  if (publicKey.asymmetricKeyType !== 'ed25519') throw new AttexError('receipt.key', 'not an Ed25519 key');
  const jwk = publicKey.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new AttexError('receipt.key', 'Ed25519 key has no public component');
  return new Uint8Array(Buffer.from(jwk.x, 'base64url'));
}

/** An Ed25519 private KeyObject from its 32-byte seed (RFC 8032 secret key). */
export function ed25519PrivateKeyFromSeed(seed: Uint8Array): KeyObject {
  if (seed.length !== 32) throw new AttexError('receipt.key', 'Ed25519 seed must be 32 bytes');
  // PKCS#8 prefix for an Ed25519 private key (RFC 8410), followed by the 32-byte seed.
  const prefix = Buffer.from('302e020100300506032b657004220420', 'hex');
  return createPrivateKey({ key: Buffer.concat([prefix, seed]), format: 'der', type: 'pkcs8' });
}
