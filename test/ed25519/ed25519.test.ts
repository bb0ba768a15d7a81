import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ed25519Signer, verifyEd25519Sodium } from '../../src/ed25519/index.ts';

describe('libsodium Ed25519', () => {
  it('takes only an Ed25519 private key', () => {
    const ed = generateKeyPairSync('ed25519');
    expect(() => ed25519Signer(ed.publicKey)).toThrow(TypeError);
    expect(() => ed25519Signer(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey)).toThrow(TypeError);
    expect(() => ed25519Signer(generateKeyPairSync('x25519').privateKey)).toThrow(TypeError);
  });

  it('verifies what it signs, and refuses wrong lengths without throwing', () => {
    const signer = ed25519Signer(generateKeyPairSync('ed25519').privateKey);
    const message = new TextEncoder().encode('receipt');
    const signature = signer.sign(message);
    expect(signature).toHaveLength(64);
    expect(verifyEd25519Sodium(signature, message, signer.publicKey)).toBe(true);
    expect(verifyEd25519Sodium(signature.subarray(0, 63), message, signer.publicKey)).toBe(false);
    expect(verifyEd25519Sodium(new Uint8Array([...signature, 0]), message, signer.publicKey)).toBe(false);
    expect(verifyEd25519Sodium(signature, message, signer.publicKey.subarray(1))).toBe(false);
    expect(verifyEd25519Sodium(signature, message, new Uint8Array(0))).toBe(false);
    // Not bytes: false, as the portable verifier answers, never libsodium's assertion.
    const anyArgs = verifyEd25519Sodium as (...args: unknown[]) => boolean;
    expect(anyArgs([...signature], message, signer.publicKey)).toBe(false);
    expect(anyArgs(signature, 'receipt', signer.publicKey)).toBe(false);
    expect(anyArgs(signature, message, null)).toBe(false);
    expect(anyArgs(new Uint16Array(64), message, signer.publicKey)).toBe(false);
  });
});
