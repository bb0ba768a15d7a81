import { generateKeyPairSync, sign as edSign } from 'node:crypto';
import { httpbis } from 'http-message-signatures';
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

  it('refuses a signature created before the executor started (its nonce may have been seen by the process before)', async () => {
    const good = await signed();
    const created = Math.floor(now.getTime() / 1000);
    const opts = { lookupKey: () => publicKey, now, replay: new ReplayCache() };
    expect(await codeOf(verifyRequest(good, { ...opts, notBefore: created + 1 }))).toBe('auth.stale-signature');
    expect(await codeOf(verifyRequest(good, { ...opts, notBefore: created }))).toBe('accepted');
  });

  it('refuses a signature created more than 10 s ahead of the clock (it could predate a restart of the replay cache)', async () => {
    expect(await codeOf(verify(await signed({}, new Date(now.getTime() + 60_000))))).toBe('auth.stale-signature');
    expect(await codeOf(verify(await signed({}, new Date(now.getTime() + 5_000))))).toBe('accepted');
    expect(await codeOf(verify(await signed({}, new Date(now.getTime() - 290_000))))).toBe('accepted');
  });

  it('forgets a nonce once its signature can no longer be fresh', () => {
    const cache = new ReplayCache(600, 10, 10);
    expect(cache.remember('k', 'a', 1_000, 1_300)).toBe(true);
    expect(cache.remember('k', 'a', 1_300, 1_600)).toBe(false); // still within: a replay
    expect(cache.remember('k', 'a', 1_301, 1_601)).toBe(true); // forgotten: its signature is stale by now anyway
  });

  it('a key fills only its share of the replay cache; other keys go on', () => {
    const cache = new ReplayCache(600, 10, 4);
    const t = 1_000;
    for (let i = 0; i < 4; i++) expect(cache.remember('flood', `n${i}`, t)).toBe(true);
    expect(() => cache.remember('flood', 'n4', t)).toThrow(expect.objectContaining({ code: 'auth.replay-cache-full' }));
    expect(cache.remember('alice', 'a0', t)).toBe(true);
    expect(cache.remember('alice', 'a0', t)).toBe(false);
    // Outside the window the flood's entries are evicted and its share is free again.
    expect(cache.remember('flood', 'n5', t + 601)).toBe(true);
  });

  it('signs an Idempotency-Key when the request carries one', async () => {
    const headers = await signRequest({ method: 'POST', url: '/v1/actions/transform', body, headers: { 'idempotency-key': 'order-1' } }, { keyId: 'alice', privateKey }, now);
    const verified = await verifyRequest({ method: 'POST', url: '/v1/actions/transform', headers, body }, { lookupKey: () => publicKey, now, replay: new ReplayCache() });
    expect(verified.components).toEqual(['@method', '@path', '@query', 'content-digest', 'idempotency-key']);
  });

  it('refuses signatures that do not cover the digest', async () => {
    const good = await signed();
    const input = String(good.headers['signature-input']).replace(' "content-digest"', '');
    expect(await codeOf(verify({ ...good, headers: { ...good.headers, 'signature-input': input } }))).toBe('auth.incomplete-coverage');
  });

  describe('the signature base is built as RFC 9421 says (checked against the signing library)', () => {
    /** Signed by the library, as another client would, over `fields` with `params`. */
    async function signedOver(fields: string[], extra: { url?: string; headers?: Record<string, string>; expires?: Date } = {}): Promise<HttpRequestParts> {
      const url = extra.url ?? '/v1/actions/transform?b=2&a=1';
      const headers = { 'content-type': 'application/json', 'content-digest': contentDigest(body), ...extra.headers };
      const signedMessage = await httpbis.signMessage(
        {
          key: { id: 'alice', alg: 'ed25519', sign: async (data: Buffer) => edSign(null, data, privateKey) },
          name: 'attex',
          fields,
          params: ['created', 'keyid', 'alg', 'nonce', ...(extra.expires ? ['expires' as const] : [])],
          paramValues: { created: now, nonce: 'n'.repeat(24), ...(extra.expires ? { expires: extra.expires } : {}) },
        },
        { method: 'POST', url: new URL(url, 'http://attex.invalid').href, headers },
      );
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(signedMessage.headers)) out[k.toLowerCase()] = String(v);
      return { method: 'POST', url, headers: out, body };
    }
    const required = ['@method', '@path', '@query', 'content-digest'];

    it('verifies extra covered header fields, @request-target and a query, in any order', async () => {
      const req = await signedOver(['content-type', ...[...required].reverse(), '@request-target', 'x-trace'], { headers: { 'x-trace': '  two words ' } });
      expect(await codeOf(verify(req))).toBe('accepted');
      expect(await codeOf(verify({ ...req, headers: { ...req.headers, 'x-trace': 'other' } }))).toBe('auth.bad-signature');
      expect(await codeOf(verify({ ...req, url: '/v1/actions/transform?a=1&b=2' }))).toBe('auth.bad-signature');
      const { 'x-trace': _dropped, ...withoutTrace } = req.headers;
      expect(await codeOf(verify({ ...req, headers: withoutTrace }))).toBe('auth.bad-signature');
    });

    it('refuses components the executor cannot derive as the caller saw them', async () => {
      for (const extra of ['@authority', '@scheme', '@target-uri']) {
        expect([extra, await codeOf(verify(await signedOver([...required, extra])))]).toEqual([extra, 'auth.unsupported-component']);
      }
      const good = await signed();
      const input = String(good.headers['signature-input']);
      const cases: Array<[string, string]> = [
        ['a component with a parameter', input.replace('"content-digest"', '"content-digest" "content-type";sf')],
        ['an uppercase header name', input.replace('"content-digest"', '"content-digest" "Content-Type"')],
        ['a token instead of a string', input.replace('"content-digest"', '"content-digest" foo')],
      ];
      for (const [what, value] of cases) {
        expect([what, await codeOf(verify({ ...good, headers: { ...good.headers, 'signature-input': value } }))]).toEqual([what, 'auth.unsupported-component']);
      }
      const twice = input.replace('"content-digest"', '"content-digest" "@path"');
      expect(await codeOf(verify({ ...good, headers: { ...good.headers, 'signature-input': twice } }))).toBe('auth.malformed-signature');
    });

    it('answers hostile covered components and values with a typed refusal, never a crash', async () => {
      for (const name of ['constructor', '__proto__', 'tostring', 'hasownproperty']) {
        const req = await signedOver([...required, name], { headers: { [name]: 'x' } });
        // The header object as Node builds it: the name is not an own member.
        const { [name]: _own, ...inherited } = req.headers;
        expect([name, await codeOf(verify({ ...req, headers: inherited }))]).toEqual([name, 'auth.bad-signature']);
      }
      // A value changed by a character String.trim would strip, or holding non-ASCII: refused.
      const req = await signedOver([...required, 'x-foo'], { headers: { 'x-foo': 'v' } });
      expect(await codeOf(verify(req))).toBe('accepted');
      expect(await codeOf(verify({ ...req, headers: { ...req.headers, 'x-foo': 'v\u00a0' } }))).toBe('auth.bad-signature');
      expect(await codeOf(verify({ ...req, headers: { ...req.headers, 'x-foo': 'caf\u00e9' } }))).toBe('auth.bad-signature');
      expect(await codeOf(verify({ ...req, headers: { ...req.headers, 'x-foo': ' \tv\t ' } }))).toBe('accepted');
    });

    it('verifies only a Signature-Input member sent in its canonical form, with RFC 9421 parameters', async () => {
      const good = await signed();
      const input = String(good.headers['signature-input']);
      const cases: Array<[string, string]> = [
        ['created as a decimal', input.replace(/created=(\d+)/, 'created=$1.0')],
        ['a parameter RFC 9421 does not define', `${input};x=@999999999999999`],
        ['a display-string parameter', `${input};x=%"%01a"`],
        ['a tag that is not a string', `${input};tag=1`],
        ['extra spaces inside the member', input.replace('" "', '"  "')],
      ];
      for (const [what, value] of cases) {
        expect([what, await codeOf(verify({ ...good, headers: { ...good.headers, 'signature-input': value } }))]).toEqual([what, 'auth.malformed-signature']);
      }
    });

    it('honours expires against the explicit now', async () => {
      expect(await codeOf(verify(await signedOver(required, { expires: new Date(now.getTime() + 60_000) })))).toBe('accepted');
      expect(await codeOf(verify(await signedOver(required, { expires: new Date(now.getTime() - 1_000) })))).toBe('auth.stale-signature');
    });
  });

  describe('only the attex signature counts, and it is the one verified', () => {
    // A member with a fresh created time and nonce but no valid signature of its own, put in
    // front of a genuine signature: parsers that read the first member would check freshness
    // and the nonce on it while the library verified the genuine one.
    function withForgedMember(req: HttpRequestParts, at: Date): HttpRequestParts {
      const forged = `attex=("@method" "@path" "@query" "content-digest");created=${Math.floor(at.getTime() / 1000)};keyid="alice";alg="ed25519";nonce="${'f'.repeat(24)}"`;
      return { ...req, headers: { ...req.headers, 'signature-input': `${forged}, ${String(req.headers['signature-input'])}` } };
    }

    it('refuses a replayed request with a fresh member in front of the used one', async () => {
      const replay = new ReplayCache();
      const good = await signed();
      expect(await codeOf(verify(good, replay))).toBe('accepted');
      expect(await codeOf(verify(withForgedMember(good, now), replay))).toBe('auth.replayed');
      // The same as two header lines (joined by the HTTP parser).
      const twoLines = { ...good, headers: { ...good.headers, 'signature-input': [String(withForgedMember(good, now).headers['signature-input']).split(', attex=')[0]!, String(good.headers['signature-input'])] } };
      expect(await codeOf(verify(twoLines, replay))).toBe('auth.replayed');
    });

    it('refuses a stale request with a fresh member in front of it', async () => {
      const old = await signed({}, new Date(now.getTime() - 3_600_000));
      expect(await codeOf(verify(withForgedMember(old, now)))).toBe('auth.stale-signature');
    });

    it('refuses a genuine signature moved under another label with a forged attex member', async () => {
      const good = await signed();
      const input = String(good.headers['signature-input']).replace(/^attex=/, 'x=');
      const sig = String(good.headers['signature']);
      const forged = String(withForgedMember(good, now).headers['signature-input']).split(', attex=')[0]!;
      const req = { ...good, headers: { ...good.headers, 'signature-input': `${forged}, ${input}`, signature: `${sig}, ${sig.replace(/^attex=/, 'x=')}` } };
      expect(await codeOf(verify(req))).toBe('auth.bad-signature');
      const noAttexSignature = { ...req, headers: { ...req.headers, signature: sig.replace(/^attex=/, 'x=') } };
      expect(await codeOf(verify(noAttexSignature))).toBe('auth.malformed-signature');
    });

    it('accepts another label beside a valid attex signature and reports only attex', async () => {
      const good = await signed();
      const extraInput = `proxy=("@method");created=1;keyid="proxy"`;
      const req = { ...good, headers: { ...good.headers, 'signature-input': `${extraInput}, ${String(good.headers['signature-input'])}`, signature: `proxy=:AAAA:, ${String(good.headers['signature'])}` } };
      const v = await verify(req);
      expect(v.signatureInput).toBe(String(good.headers['signature-input']));
      expect(v.signature).toBe(String(good.headers['signature']));
    });

    it('reports malformed structured fields as auth.malformed-signature', async () => {
      const good = await signed();
      const input = String(good.headers['signature-input']);
      const cases: Array<[string, Record<string, string>]> = [
        ['a signature that is not a byte sequence', { signature: 'attex=notbase64' }],
        ['a non-ASCII nonce', { 'signature-input': input.replace(/nonce="[^"]*"/, 'nonce="ééééééééééééééééé"') }],
        ['a fractional created', { 'signature-input': input.replace(/created=\d+/, 'created=1.5') }],
        ['alg as a token', { 'signature-input': input.replace('alg="ed25519"', 'alg=ed25519') }],
        ['a 15-character nonce', { 'signature-input': input.replace(/nonce="[^"]*"/, `nonce="${'n'.repeat(15)}"`) }],
        ['no attex member', { 'signature-input': input.replace(/^attex=/, 'other=') }],
      ];
      for (const [what, headers] of cases) {
        expect([what, await codeOf(verify({ ...good, headers: { ...good.headers, ...headers } }))]).toEqual([what, 'auth.malformed-signature']);
      }
      // A covered component with a parameter is another component.
      const sf = input.replace('"content-digest"', '"content-digest";sf');
      expect(await codeOf(verify({ ...good, headers: { ...good.headers, 'signature-input': sf } }))).toBe('auth.incomplete-coverage');
    });
  });
});
