import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeProtectedHeader, exportJWK, generateKeyPair, createLocalJWKSet, jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decryptFromBroker, encryptToTee } from '../../src/broker/jwe.ts';
import type { TeePubKey } from '../../src/broker/protocol.ts';
import { EAR_PROFILE, TOKEN_KEY_FILE, issueEarToken, jwks, loadOrCreateTokenKey, verifyEarToken, type EarSubmod } from '../../src/broker/token.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'attex-broker-crypto-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function ecTeeKey() {
  const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' });
  const jwk = await exportJWK(publicKey);
  const tee: TeePubKey = { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: jwk.x!, y: jwk.y! };
  return { tee, privateKey };
}

const submod = (tee: TeePubKey): EarSubmod => ({
  'ear.status': 'affirming',
  'ear.trustworthiness-vector': { executables: 2, hardware: 2 },
  'ear.appraisal-policy-id': 'test-policy',
  'ear.veraison.annotated-evidence': {
    tee: 'sim-snp', kind: 'snp', simulated: true, measurement: 'ab'.repeat(48), debug: false,
    'evidence-digest': `sha256:${'00'.repeat(32)}`, 'report-data': '00'.repeat(64), 'tee-pubkey': tee,
    'runtime-data': { nonce: 'n', 'tee-pubkey': tee }, 'verifier-outcome': 'accept', 'tcb-status': null,
    'appraisal-policy-digest': `sha256:${'11'.repeat(32)}`,
  },
});

describe('JWE to the TEE key', () => {
  it('EC: ECDH-ES+A256KW / A256GCM flattened JSON that only the TEE key opens', async () => {
    const { tee, privateKey } = await ecTeeKey();
    const jwe = await encryptToTee(tee, new TextEncoder().encode('jwe-secret'));
    expect(Object.keys(jwe).sort()).toEqual(['ciphertext', 'encrypted_key', 'iv', 'protected', 'tag']);
    const header = decodeProtectedHeader(jwe);
    expect(header).toMatchObject({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' });
    expect(header.epk).toMatchObject({ kty: 'EC', crv: 'P-256' });
    expect(new TextDecoder().decode(await decryptFromBroker(jwe, privateKey))).toBe('jwe-secret');
    const other = await ecTeeKey();
    await expect(decryptFromBroker(jwe, other.privateKey)).rejects.toMatchObject({ code: 'broker.jwe' });
  });

  it('RSA: RSA-OAEP-256 / A256GCM', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RSA-OAEP-256', { modulusLength: 2048 });
    const jwk = await exportJWK(publicKey);
    const tee: TeePubKey = { kty: 'RSA', alg: 'RSA-OAEP-256', n: jwk.n!, e: jwk.e! };
    const jwe = await encryptToTee(tee, new TextEncoder().encode('rsa-secret'));
    expect(decodeProtectedHeader(jwe)).toMatchObject({ alg: 'RSA-OAEP-256', enc: 'A256GCM' });
    expect(new TextDecoder().decode(await decryptFromBroker(jwe, privateKey))).toBe('rsa-secret');
  });

  it('RSA: refuses a 2047-bit modulus written with a leading zero octet (counted as 2048 bits before)', async () => {
    const jwk = generateKeyPairSync('rsa', { modulusLength: 2047 }).publicKey.export({ format: 'jwk' });
    const n = Buffer.concat([Buffer.alloc(1), Buffer.from(jwk.n!, 'base64url')]).toString('base64url');
    await expect(encryptToTee({ kty: 'RSA', alg: 'RSA-OAEP-256', n, e: jwk.e! }, new Uint8Array(1))).rejects.toMatchObject({ code: 'broker.tee-pubkey' });
  });

  it('refuses a point that is not on the curve', async () => {
    const { tee } = await ecTeeKey();
    const bad = { ...tee, y: Buffer.alloc(32, 1).toString('base64url') } as TeePubKey;
    await expect(encryptToTee(bad, new Uint8Array(1))).rejects.toMatchObject({ code: 'broker.tee-pubkey' });
  });
});

describe('EAR tokens', () => {
  it('persists the ES256 key (0600), serves it as JWKS and verifies with it', async () => {
    const key = await loadOrCreateTokenKey(dir);
    const again = await loadOrCreateTokenKey(dir);
    expect(again.kid).toBe(key.kid);
    expect((await stat(path.join(dir, TOKEN_KEY_FILE))).mode & 0o777).toBe(0o600);
    const set = jwks(key);
    expect(set.keys[0]).not.toHaveProperty('d');
    expect(set.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: key.kid });

    const { tee } = await ecTeeKey();
    const now = new Date('2026-01-01T00:00:00Z');
    const { token, claims } = await issueEarToken(key, {
      issuer: 'attex-broker', build: 'test', now, ttlSeconds: 60, nonce: 'nonce-1', sessionHash: 'ab'.repeat(32), submodName: 'snp', submod: submod(tee),
    });
    expect(claims.eat_profile).toBe(EAR_PROFILE);
    // An independent verifier needs only the JWKS.
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(set), { currentDate: now });
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'JWT', kid: key.kid });
    expect(payload).toMatchObject({ eat_profile: EAR_PROFILE, iat: 1767225600, exp: 1767225660, 'ear.verifier-id': { developer: 'attex', build: 'test' } });
    expect(payload['submods']).toHaveProperty('snp');

    expect((await verifyEarToken(key, token, { issuer: 'attex-broker', now })).jti).toBe(claims.jti);
    await expect(verifyEarToken(key, token, { issuer: 'attex-broker', now: new Date(now.getTime() + 61_000) })).rejects.toMatchObject({ code: 'broker.token-expired' });
    await expect(verifyEarToken(key, token, { issuer: 'other', now })).rejects.toMatchObject({ code: 'broker.token-invalid' });
    const otherKey = await loadOrCreateTokenKey(path.join(dir, 'other'));
    await expect(verifyEarToken(otherKey, token, { issuer: 'attex-broker', now })).rejects.toMatchObject({ code: 'broker.token-invalid' });
    const [h, p, s] = token.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...payload, exp: 9e9 })).toString('base64url')}.${s}`;
    expect(p).not.toBe(tampered.split('.')[1]);
    await expect(verifyEarToken(key, tampered, { issuer: 'attex-broker', now })).rejects.toMatchObject({ code: 'broker.token-invalid' });
  });

  it('refuses a token key file that is not a private P-256 JWK', async () => {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(path.join(dir, TOKEN_KEY_FILE), JSON.stringify({ kty: 'oct', k: 'AAAA' }));
    await expect(loadOrCreateTokenKey(dir)).rejects.toMatchObject({ code: 'broker.token-key' });
    expect(await readFile(path.join(dir, TOKEN_KEY_FILE), 'utf8')).toContain('oct');
  });
});
