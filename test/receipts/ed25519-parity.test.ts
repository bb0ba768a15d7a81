/**
 * libsodium (the Node signer and verifier, src/ed25519), node:crypto's OpenSSL and @noble/ed25519
 * in strict mode (the portable verifier) must agree byte for byte on signatures and on every
 * verdict, including the edge cases where strict RFC 8032 verification rejects what lenient
 * (ZIP-215) verification accepts.
 */
import { createPublicKey, generateKeyPairSync, randomBytes, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { createReceiptSigner, ed25519PrivateKeyFromSeed, verifyEd25519Node } from '../../src/receipts/index.ts';
// The portable verifier (noble, strict) against node:crypto, both directly and as the installed backend.
import { verifyEd25519Portable as verifyEd25519 } from '../../src/receipts/ed25519.ts';

ed.hashes.sha512 = sha512;
const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = JSON.parse(readFileSync(path.join(here, 'fixtures/rfc8032-ed25519.json'), 'utf8')) as {
  vectors: { name: string; secretKey: string; publicKey: string; message: string; signature: string }[];
  nonCanonical: { publicKey: string; message: string; signature: string };
};
const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

/** The verdict of the Node backend (libsodium), which must be OpenSSL's too. */
function nodeVerifies(sig: Uint8Array, msg: Uint8Array, pub: Uint8Array): boolean {
  const viaBackend = verifyEd25519Node(sig, msg, pub);
  let openssl: boolean;
  try {
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(pub).toString('base64url') }, format: 'jwk' });
    openssl = nodeVerify(null, msg, key, sig);
  } catch {
    openssl = false;
  }
  if (openssl !== viaBackend) throw new Error(`libsodium says ${viaBackend}, OpenSSL says ${openssl}`);
  return viaBackend;
}

function littleEndian(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}

function withS(sig: Uint8Array, s: bigint): Uint8Array {
  const out = sig.slice();
  for (let i = 0; i < 32; i++) out[32 + i] = Number((s >> BigInt(8 * i)) & 0xffn);
  return out;
}

describe('Ed25519 parity: libsodium vs OpenSSL vs @noble/ed25519 strict', () => {
  it('reproduces and verifies every RFC 8032 section 7.1 vector with both', () => {
    expect(fixture.vectors).toHaveLength(5);
    for (const v of fixture.vectors) {
      const signer = createReceiptSigner(ed25519PrivateKeyFromSeed(hex(v.secretKey)));
      const msg = hex(v.message);
      expect(Buffer.from(signer.publicKeyRaw).toString('hex'), v.name).toBe(v.publicKey);
      expect(Buffer.from(ed.getPublicKey(hex(v.secretKey))).toString('hex'), v.name).toBe(v.publicKey);
      expect(Buffer.from(signer.sign(msg)).toString('hex'), v.name).toBe(v.signature);
      expect(Buffer.from(ed.sign(msg, hex(v.secretKey))).toString('hex'), v.name).toBe(v.signature);
      expect(verifyEd25519(hex(v.signature), msg, hex(v.publicKey)), v.name).toBe(true);
      expect(nodeVerifies(hex(v.signature), msg, hex(v.publicKey)), v.name).toBe(true);
      // One flipped message bit: both reject.
      const other = msg.length === 0 ? new Uint8Array([0]) : msg.map((b, i) => (i === 0 ? b ^ 1 : b));
      expect(verifyEd25519(hex(v.signature), other, hex(v.publicKey)), v.name).toBe(false);
      expect(nodeVerifies(hex(v.signature), other, hex(v.publicKey)), v.name).toBe(false);
    }
  });

  it('signs byte-identically and agrees on verdicts over many random keys and messages', () => {
    for (let i = 0; i < 40; i++) {
      const seed = randomBytes(32);
      const signer = createReceiptSigner(ed25519PrivateKeyFromSeed(seed));
      const msg = randomBytes(i * 7);
      const sig = signer.sign(msg);
      expect(Buffer.from(sig).equals(Buffer.from(ed.sign(msg, seed)))).toBe(true);
      expect(Buffer.from(sig).equals(nodeSign(null, msg, ed25519PrivateKeyFromSeed(seed)))).toBe(true);
      expect(verifyEd25519(sig, msg, signer.publicKeyRaw)).toBe(true);
      expect(nodeVerifies(sig, msg, signer.publicKeyRaw)).toBe(true);
      const bad = sig.slice();
      bad[i % 64]! ^= 0x40;
      expect(verifyEd25519(bad, msg, signer.publicKeyRaw)).toBe(nodeVerifies(bad, msg, signer.publicKeyRaw));
      expect(verifyEd25519(bad, msg, signer.publicKeyRaw)).toBe(false);
    }
  });

  it('both reject S >= L (the published malleability vector and S + L, S = L on fresh signatures)', () => {
    const nc = fixture.nonCanonical;
    expect(verifyEd25519(hex(nc.signature), hex(nc.message), hex(nc.publicKey))).toBe(false);
    expect(nodeVerifies(hex(nc.signature), hex(nc.message), hex(nc.publicKey))).toBe(false);
    const { privateKey } = generateKeyPairSync('ed25519');
    const signer = createReceiptSigner(privateKey);
    const msg = new TextEncoder().encode('malleable?');
    const sig = signer.sign(msg);
    const s = littleEndian(sig.subarray(32));
    for (const forged of [withS(sig, s + L), withS(sig, L)]) {
      expect(verifyEd25519(forged, msg, signer.publicKeyRaw)).toBe(false);
      expect(nodeVerifies(forged, msg, signer.publicKeyRaw)).toBe(false);
    }
  });

  it('both reject small-order public keys that lenient ZIP-215 verification accepts', () => {
    const identity = new Uint8Array(32);
    identity[0] = 1;
    // A point of order 8 (listed among the small-order encodings in the Ed25519 literature).
    const order8 = hex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a');
    const sigRidS0 = new Uint8Array(64);
    sigRidS0.set(identity, 0); // R = identity, S = 0
    let checked = 0;
    for (let i = 0; i < 64 && checked < 3; i++) {
      const msg = new TextEncoder().encode(`small-order ${i}`);
      // With A of order 8, [k]A is the identity when 8 | k, so the cofactorless equation holds too.
      const k = littleEndian(sha512(new Uint8Array([...identity, ...order8, ...msg]))) % L;
      if (k % 8n !== 0n) continue;
      checked++;
      expect(ed.verify(sigRidS0, msg, order8, { zip215: true })).toBe(true);
      expect(verifyEd25519(sigRidS0, msg, order8)).toBe(false);
      expect(nodeVerifies(sigRidS0, msg, order8)).toBe(false);
    }
    expect(checked).toBe(3);
    const msg = new TextEncoder().encode('any message');
    expect(ed.verify(sigRidS0, msg, identity, { zip215: true })).toBe(true);
    expect(verifyEd25519(sigRidS0, msg, identity)).toBe(false);
    expect(nodeVerifies(sigRidS0, msg, identity)).toBe(false);
  });

  it('both reject a non-canonical public key encoding (y >= p)', () => {
    const yIsPPlus1 = hex('eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f');
    const sig = new Uint8Array(64);
    sig[0] = 1;
    const msg = new Uint8Array([0]);
    expect(verifyEd25519(sig, msg, yIsPPlus1)).toBe(false);
    expect(nodeVerifies(sig, msg, yIsPPlus1)).toBe(false);
  });

  it('rejects malformed lengths without throwing', () => {
    expect(verifyEd25519(new Uint8Array(63), new Uint8Array(0), new Uint8Array(32))).toBe(false);
    expect(verifyEd25519(new Uint8Array(64), new Uint8Array(0), new Uint8Array(31))).toBe(false);
  });
});
