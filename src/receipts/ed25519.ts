/**
 * Portable Ed25519 verification and key identifiers (no Node APIs: runs in browsers too).
 *
 * Verification is strict RFC 8032 via @noble/ed25519 with `zip215: false`: canonical point
 * encodings, S < L, and small-order public keys refused. That is the rule Go's crypto/ed25519
 * and the interop checkers apply (they additionally accept small-order keys; an executor key
 * is never one, so nothing we sign is judged differently).
 */
import * as ed from '@noble/ed25519';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';

// noble needs a synchronous SHA-512 for its sync API; the same pure-JS hash everywhere.
ed.hashes.sha512 = sha512;

export const ED25519_PUBLIC_KEY_LENGTH = 32;
export const ED25519_SIGNATURE_LENGTH = 64;

export type Ed25519Verify = (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => boolean;

/** Strict RFC 8032 verification with noble (pure JS, ~0.3k/s per core). */
export function verifyEd25519Portable(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    return ed.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

let backend: Ed25519Verify = verifyEd25519Portable;

/**
 * Installs a faster verifier with the same strict semantics (on Node: libsodium, ~40x faster;
 * see ed25519-node.ts). The parity test holds both to identical verdicts on RFC 8032 vectors and
 * the non-canonical edge cases.
 */
export function useEd25519Verifier(verify: Ed25519Verify): void {
  backend = verify;
}

/** Strict verification; false (never a throw) for any malformed input. */
export function verifyEd25519(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== ED25519_SIGNATURE_LENGTH || publicKey.length !== ED25519_PUBLIC_KEY_LENGTH) return false;
  return backend(signature, message, publicKey);
}

/** The securesystemslib public-key JSON (canonical form) for an Ed25519 key. */
export function sslibKeyJson(publicKey: Uint8Array): string {
  // Key order and compact form are those of securesystemslib's canonical JSON encoder.
  return `{"keytype":"ed25519","keyval":{"public":"${bytesToHex(publicKey)}"},"scheme":"ed25519"}`;
}

/**
 * securesystemslib's default keyid (>= 0.28): lowercase hex SHA-256 of the canonical key JSON.
 * securesystemslib.dsse.Envelope.verify selects keys by this id, so envelopes carry it.
 */
export function sslibKeyId(publicKey: Uint8Array): string {
  if (publicKey.length !== ED25519_PUBLIC_KEY_LENGTH) throw new RangeError('Ed25519 public key must be 32 bytes');
  return bytesToHex(sha256(utf8ToBytes(sslibKeyJson(publicKey))));
}

let sha256Backend: (data: Uint8Array) => Uint8Array = sha256;

/** Installs a native SHA-256 (on Node: node:crypto, see ed25519-node.ts); same digests. */
export function useSha256(hash: (data: Uint8Array) => Uint8Array): void {
  sha256Backend = hash;
}

/** SHA-256 with the fastest installed implementation (pure JS unless one was installed). */
export function sha256Portable(data: Uint8Array): Uint8Array {
  return sha256Backend(data);
}
