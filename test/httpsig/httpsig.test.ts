import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ReplayCache, contentDigest, signRequest, verifyRequest, type HttpRequestParts } from '../../src/httpsig/index.ts';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
const now = new Date('2026-03-01T12:00:00Z');
const body = new TextEncoder().encode('{"text":"hello"}');

async function signed(overrides: Partial<HttpRequestParts> = {}, at = now): Promise<HttpRequestParts> {
  const headers = await signRequest({ method: 'POST', url: '/v1/actions/transform', body, headers: { 'content-type': 'application/json' } }, { keyId: 'alice', privateKey }, at);
  return { method: 'POST', url: '/v1/actions/transform', headers, body, ...overrides };
}

function verify(req: HttpRequestParts, replay = new ReplayCache()) {
  return verifyRequest(req, { lookupKey: (id) => (id === 'alice' ? publicKey : undefined), now, replay });
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (err) {
    return (err as { code: string }).code;
  }
}

describe('RFC 9421 request signatures', () => {
  it('verifies a signed request and reports what it proves', async () => {
    const req = await signed();
    const v = await verify(req);
    expect(v.keyId).toBe('alice');
    expect(v.contentDigest).toBe(contentDigest(body));
    expect(v.signatureInput).toMatch(/^attex=\("@method" "@path" "@query" "content-digest"\);created=\d+;keyid="alice";alg="ed25519";nonce="/);
  });

  it('refuses unsigned, tampered, replayed, stale and unknown-key requests', async () => {
    const replay = new ReplayCache();
    const good = await signed();
    expect(await codeOf(verify({ ...good, headers: { 'content-type': 'application/json' } }))).toBe('auth.unsigned');
    expect(await codeOf(verify({ ...good, body: new TextEncoder().encode('{"text":"HELLO"}') }))).toBe('auth.digest-mismatch');
    expect(await codeOf(verify({ ...good, url: '/v1/actions/other' }))).toBe('auth.bad-signature');
    expect(await codeOf(verify({ ...good, method: 'PUT' }))).toBe('auth.bad-signature');
    expect(await codeOf(verify({ ...good, url: '/v1/actions/transform?extra=1' }))).toBe('auth.bad-signature');
    expect(await codeOf(verify(good, replay))).toBe('accepted');
    expect(await codeOf(verify(good, replay))).toBe('auth.replayed');
    expect(await codeOf(verify(await signed({}, new Date(now.getTime() - 3_600_000))))).toBe('auth.stale-signature');
    const forged = await signRequest({ method: 'POST', url: '/v1/actions/transform', body }, { keyId: 'alice', privateKey: other.privateKey }, now);
    expect(await codeOf(verify({ ...good, headers: forged }))).toBe('auth.bad-signature');
    const stranger = await signRequest({ method: 'POST', url: '/v1/actions/transform', body }, { keyId: 'mallory', privateKey: other.privateKey }, now);
    expect(await codeOf(verify({ ...good, headers: stranger }))).toBe('auth.unknown-key');
  });

  it('refuses signatures that do not cover the digest', async () => {
    const good = await signed();
    const input = String(good.headers['signature-input']).replace(' "content-digest"', '');
    expect(await codeOf(verify({ ...good, headers: { ...good.headers, 'signature-input': input } }))).toBe('auth.incomplete-coverage');
  });
});
