/**
 * The Node entry points' Ed25519 verification and SHA-256: libsodium (src/ed25519) and
 * node:crypto. libsodium's verification is strict RFC 8032 (S < L, canonical encodings,
 * small-order keys refused), the same verdicts as noble with `zip215: false` on every vector and
 * edge case of test/receipts/ed25519-parity.test.ts. Browsers and other runtimes keep the
 * portable noble verifier.
 */
import { createHash } from 'node:crypto';
import { verifyEd25519Sodium } from '../ed25519/index.ts';
import { useEd25519Verifier, useSha256 } from './ed25519.ts';

export const verifyEd25519Node = verifyEd25519Sodium;

useEd25519Verifier(verifyEd25519Node);
useSha256((data) => new Uint8Array(createHash('sha256').update(data).digest()));
