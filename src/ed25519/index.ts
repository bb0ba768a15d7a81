/**
 * Ed25519 signing and verification on Node through libsodium (sodium-native).
 *
 * Why not node:crypto: every action verifies one request signature and signs one receipt (and
 * each group commit signs a checkpoint) on the event loop, and Node's OpenSSL does Ed25519 with
 * 32-bit field arithmetic: on the reference machine libsodium signs in ~0.45x and verifies in
 * ~0.5x the time (docs/executor.md, performance). Signatures are deterministic (RFC 8032), so both
 * produce the same bytes. libsodium's verification is strict: S < L, canonical encodings, and
 * small-order public keys and R refused; it accepts nothing the portable strict verifier refuses
 * (test/receipts/ed25519-parity.test.ts holds the three implementations to that).
 */
import { type KeyObject, createPrivateKey, createPublicKey } from 'node:crypto';
import sodium from 'sodium-native';

export const ED25519_SIGNATURE_BYTES = 64;
export const ED25519_PUBLIC_KEY_BYTES = 32;

export interface Ed25519Signer {
  /** The raw 32-byte public key. */
  readonly publicKey: Uint8Array;
  /** The 64-byte RFC 8032 signature of `message`. */
  sign(message: Uint8Array): Uint8Array;
}

/** PKCS#8 DER of an Ed25519 private key (RFC 8410): this 16-byte prefix, then the 32-byte seed. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The raw 32-byte public key of an Ed25519 public or private KeyObject; undefined for any other key. */
export function ed25519PublicKeyBytes(key: KeyObject): Uint8Array | undefined {
  if (key?.asymmetricKeyType !== 'ed25519') return undefined;
  const x = (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'jwk' }).x;
  return typeof x === 'string' ? new Uint8Array(Buffer.from(x, 'base64url')) : undefined;
}

/** An Ed25519 private KeyObject from its 32-byte seed (the RFC 8032 secret key); undefined for another length. */
export function ed25519KeyFromSeed(seed: Uint8Array): KeyObject | undefined {
  if (!(seed instanceof Uint8Array) || seed.length !== sodium.crypto_sign_SEEDBYTES) return undefined;
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

/**
 * A signer for an Ed25519 private KeyObject. libsodium's copy of the secret key lives in
 * `sodium_malloc` memory (guard pages, locked against swapping, zeroed when freed); the DER
 * export it is read from is zeroed at once.
 */
export function ed25519Signer(privateKey: KeyObject): Ed25519Signer {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') throw new TypeError('an Ed25519 private KeyObject is required');
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  const secretKey = sodium.sodium_malloc(sodium.crypto_sign_SECRETKEYBYTES);
  const publicKey = Buffer.alloc(sodium.crypto_sign_PUBLICKEYBYTES);
  try {
    if (der.length !== PKCS8_PREFIX.length + sodium.crypto_sign_SEEDBYTES || !der.subarray(0, PKCS8_PREFIX.length).equals(PKCS8_PREFIX)) {
      throw new TypeError('unexpected PKCS#8 encoding of an Ed25519 private key');
    }
    sodium.crypto_sign_seed_keypair(publicKey, secretKey, der.subarray(PKCS8_PREFIX.length));
  } finally {
    sodium.sodium_memzero(der);
  }
  return {
    publicKey: new Uint8Array(publicKey),
    sign(message) {
      const signature = new Uint8Array(ED25519_SIGNATURE_BYTES);
      sodium.crypto_sign_detached(signature, message, secretKey);
      return signature;
    },
  };
}

/** Strict RFC 8032 verification; false (never a throw) for anything but bytes of the right lengths. */
export function verifyEd25519Sodium(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (!(signature instanceof Uint8Array && message instanceof Uint8Array && publicKey instanceof Uint8Array)) return false;
  if (signature.length !== ED25519_SIGNATURE_BYTES || publicKey.length !== ED25519_PUBLIC_KEY_BYTES) return false;
  return sodium.crypto_sign_verify_detached(signature, message, publicKey);
}
