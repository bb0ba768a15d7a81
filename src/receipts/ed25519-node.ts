/**
 * node:crypto Ed25519 verification for the Node entry points. OpenSSL's Ed25519 verify is
 * cofactorless and requires S < L and canonical encodings, the same verdicts as noble with
 * `zip215: false` (test/receipts/ed25519-parity.test.ts checks both on the same vectors).
 * Browsers and other runtimes keep the portable noble verifier.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { useEd25519Verifier, useSha256 } from './ed25519.ts';

const keys = new Map<string, KeyObject | null>();
const MAX_CACHED_KEYS = 1024;

function keyObject(publicKey: Uint8Array): KeyObject | null {
  const id = Buffer.from(publicKey).toString('base64url');
  let key = keys.get(id);
  if (key === undefined) {
    try {
      key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: id }, format: 'jwk' });
    } catch {
      key = null; // not a valid point encoding
    }
    if (keys.size >= MAX_CACHED_KEYS) keys.delete(keys.keys().next().value!);
    keys.set(id, key);
  }
  return key;
}

export function verifyEd25519Node(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  const key = keyObject(publicKey);
  if (!key) return false;
  try {
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
}

useEd25519Verifier(verifyEd25519Node);
useSha256((data) => new Uint8Array(createHash('sha256').update(data).digest()));
