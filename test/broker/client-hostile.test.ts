/**
 * The executor's broker client against a hostile broker (real HTTP on loopback): tokens for
 * another round or with absurd expiries, bodies that drip or never end, interim answers
 * forever, redirects and broker-chosen error codes. Each must end in a typed error, in time,
 * with no secret kept.
 */
import { createHash } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import path from 'node:path';
import { CompactSign, FlattenedEncrypt, exportJWK, generateKeyPair, importJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simProvider } from '../../src/attestation/providers/index.ts';
import { attestAndFetch, BrokerCallError } from '../../src/broker/client/index.ts';
import { tempDir } from './harness.ts';

let tmp: Awaited<ReturnType<typeof tempDir>>;
const servers: Server[] = [];
const signing = await generateKeyPair('ES256', { extractable: true });

interface Round {
  readonly nonce: string;
  readonly session: string;
  teePubkey?: { x: string; y: string };
}

/** What a misbehaving broker changes; everything else is a well-behaved KBS. */
interface Misbehaviour {
  /** Claims merged over the genuine token's, given the round. */
  readonly claims?: (round: Round) => Record<string, unknown>;
  /** Answers a request itself when it returns true. */
  readonly answer?: (url: string, req: IncomingMessage, res: ServerResponse) => boolean;
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

async function hostileBroker(m: Misbehaviour = {}): Promise<string> {
  let round: Round = { nonce: '', session: '' };
  const server = createServer(async (req, res) => {
    const url = req.url ?? '';
    const text = await body(req);
    if (m.answer?.(url, req, res)) return;
    res.setHeader('content-type', 'application/json');
    if (url === '/kbs/v0/auth') {
      round = { nonce: Buffer.from(createHash('sha256').update(String(Math.random())).digest()).toString('base64'), session: `s${Math.random().toString(36).slice(2)}` };
      res.setHeader('set-cookie', `kbs-session-id=${round.session}; Path=/kbs/v0`);
      res.end(JSON.stringify({ nonce: round.nonce, 'extra-params': '' }));
    } else if (url === '/kbs/v0/attest') {
      round.teePubkey = (JSON.parse(text) as { 'runtime-data': { 'tee-pubkey': { x: string; y: string } } })['runtime-data']['tee-pubkey'];
      const now = Math.floor(Date.now() / 1000);
      const claims = {
        iat: now, exp: now + 900, eat_nonce: round.nonce,
        'attex.kbs-session': createHash('sha256').update(round.session).digest('hex'),
        submods: { cpu0: { 'ear.status': 'affirming', 'ear.veraison.annotated-evidence': { 'tee-pubkey': round.teePubkey } } },
        ...m.claims?.(round),
      };
      // Signed over raw JSON text, so a claim can be a number JSON allows but jose would not write.
      const payload = new TextEncoder().encode(JSON.stringify(claims).replace('"exp":"1e400"', '"exp":1e400'));
      res.end(JSON.stringify({ token: await new CompactSign(payload).setProtectedHeader({ alg: 'ES256', typ: 'JWT' }).sign(signing.privateKey) }));
    } else if (url.startsWith('/kbs/v0/resource/')) {
      const key = await importJWK({ kty: 'EC', crv: 'P-256', ...round.teePubkey }, 'ECDH-ES+A256KW');
      const jwe = await new FlattenedEncrypt(new TextEncoder().encode('hostile-test-secret')).setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' }).encrypt(key);
      res.end(JSON.stringify(jwe));
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

function fetchFrom(brokerUrl: string, extra: Partial<Parameters<typeof attestAndFetch>[0]> = {}) {
  return attestAndFetch({
    brokerUrl,
    provider: simProvider({ stateDir: path.join(tmp.dir, 'sim') }),
    resources: ['app/key/db'],
    retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 },
    timeoutMs: 1000,
    ...extra,
  });
}

async function refusal(p: Promise<unknown>): Promise<BrokerCallError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(BrokerCallError);
  return err as BrokerCallError;
}

beforeAll(async () => {
  tmp = await tempDir('attex-broker-hostile-');
});

afterAll(async () => {
  for (const s of servers) s.closeAllConnections();
  for (const s of servers) await new Promise((resolve) => s.close(resolve));
  await tmp?.cleanup();
});

describe('tokens', () => {
  it('a well-behaved broker works, with and without its key pinned', async () => {
    const url = await hostileBroker();
    for (const tokenKey of [undefined, await exportJWK(signing.publicKey)]) {
      const s = await fetchFrom(url, tokenKey === undefined ? {} : { tokenKey });
      expect(new TextDecoder().decode(s.secrets.get('app/key/db'))).toBe('hostile-test-secret');
      s.close();
    }
  });

  const now = () => Math.floor(Date.now() / 1000);
  const cases: Array<[string, (r: Round) => Record<string, unknown>]> = [
    ['answers another challenge', () => ({ eat_nonce: 'c29tZW9uZSBlbHNlJ3Mgbm9uY2U=' })],
    ['belongs to another session', () => ({ 'attex.kbs-session': 'ab'.repeat(32) })],
    ['was issued for another TEE key', (r) => ({ submods: { cpu0: { 'ear.veraison.annotated-evidence': { 'tee-pubkey': { ...r.teePubkey, x: 'AAAA' } } } } })],
    ['has already expired', () => ({ exp: now() - 10 })],
    ['claims to live for 40 days', () => ({ exp: now() + 40 * 86400 })],
    ['has an infinite expiry', () => ({ exp: '1e400' })],
  ];
  for (const [name, claims] of cases) {
    it(`a token that ${name} is refused, and no round is repeated for it`, async () => {
      let attests = 0;
      const url = await hostileBroker({ claims, answer: (u) => (u === '/kbs/v0/attest' && attests++, false) });
      const err = await refusal(fetchFrom(url));
      expect(err.code).toBe('broker.client.bad-token');
      expect(err.retryable).toBe(false);
      expect(attests).toBe(1);
    });
  }

  it('with the broker key pinned, a token signed by another key is refused', async () => {
    const other = await generateKeyPair('ES256', { extractable: true });
    const err = await refusal(fetchFrom(await hostileBroker(), { tokenKey: await exportJWK(other.publicKey) }));
    expect(err.code).toBe('broker.client.bad-token');
    expect(err.message).toContain('does not verify');
  });
});

describe('transport', () => {
  it('a body that drips or interim answers that never end are cut off at the call timeout', async () => {
    const drip = await hostileBroker({
      answer: (url, _req, res) => {
        if (url !== '/kbs/v0/auth') return false;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
        const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write(' ')), 100);
        return true;
      },
    });
    const interim = await hostileBroker({
      answer: (url, _req, res) => {
        if (url !== '/kbs/v0/auth') return false;
        const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.writeProcessing()), 100);
        res.on('close', () => clearInterval(t));
        return true;
      },
    });
    for (const url of [drip, interim]) {
      const start = performance.now();
      const err = await refusal(fetchFrom(url, { timeoutMs: 500 }));
      expect(err.code).toBe('broker.client.timeout');
      // Two attempts of 500 ms each and a short backoff, not forever.
      expect(performance.now() - start).toBeLessThan(3000);
    }
  });

  it('a redirect is not a success, and a broker cannot choose one of the client\'s codes or inject lines', async () => {
    const redirect = await hostileBroker({
      answer: (url, _req, res) => (url === '/kbs/v0/auth' ? (res.writeHead(302, { location: 'http://elsewhere.invalid/', 'content-type': 'application/json' }), res.end('{}'), true) : false),
    });
    expect((await refusal(fetchFrom(redirect))).code).toBe('broker.client.bad-response');

    for (const code of ['broker.client.aborted', 'evil\n{"level":60}', 'x'.repeat(100)]) {
      const url = await hostileBroker({
        answer: (u, _req, res) => (u === '/kbs/v0/auth' ? (res.writeHead(400, { 'content-type': 'application/json' }), res.end(JSON.stringify({ code, detail: 'line one\nline two\u001b[31m' })), true) : false),
      });
      const err = await refusal(fetchFrom(url));
      expect(err.code).toBe('broker.http-400');
      expect(err.message).not.toMatch(/[\n\u001b]/);
    }
  });

  it('an answer larger than 2 MiB is refused once the cap is passed, not buffered', async () => {
    const endless = await hostileBroker({
      answer: (url, _req, res) => {
        if (url !== '/kbs/v0/auth') return false;
        res.writeHead(200, { 'content-type': 'application/json' });
        const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write(' '.repeat(65_536))), 1);
        res.on('close', () => clearInterval(t));
        return true;
      },
    });
    const err = await refusal(fetchFrom(endless, { timeoutMs: 20_000 }));
    expect(err.code).toBe('broker.client.response-too-large');
  });

  it('retry delays do not pile listeners onto the caller\'s signal', async () => {
    const controller = new AbortController();
    const url = await hostileBroker({ answer: (u, _req, res) => (u === '/kbs/v0/auth' ? (res.writeHead(503), res.end('{}'), true) : false) });
    await refusal(fetchFrom(url, { signal: controller.signal, retry: { attempts: 4, baseDelayMs: 5, maxDelayMs: 10 } }));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});
