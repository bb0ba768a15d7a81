/**
 * Time, trust and the client's resilience: expired nonces and tokens under an injected clock,
 * simulated evidence and foreign measurements refused by trust and appraisal, the client
 * retrying an unreachable broker with backoff and renewing before its token expires.
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simProvider } from '../../src/attestation/providers/index.ts';
import type { SimulatedTee } from '../../src/attestation/sim/index.ts';
import { attestAndFetch, backoffDelay, openBrokerSession, BrokerCallError } from '../../src/broker/client/index.ts';
import { toHex } from '../../src/util/index.ts';
import { rawConnection } from '../server/helpers.ts';
import { appraisalPolicyFor, attestSim, attestationFor, auth, call, openSim, startBroker, teeKey, tempDir, type TestBroker } from './harness.ts';

let tmp: Awaited<ReturnType<typeof tempDir>>;
let sim: SimulatedTee;
let m: string;
const open: TestBroker[] = [];

const policyFor = (measurement: string) => ({
  version: 1,
  id: 'lifecycle',
  rules: [{ resources: ['app/key/*'], tees: ['sim-snp'], measurements: [measurement], minStatus: 'warning', allowSimulated: true }],
});

async function broker(opts: Partial<Parameters<typeof startBroker>[0]> = {}): Promise<TestBroker> {
  const b = await startBroker({ sim, dir: tmp.dir, resourcePolicy: policyFor(m), ...opts });
  await b.broker.store.put('app/key/db', new TextEncoder().encode('lifecycle-secret'));
  open.push(b);
  return b;
}

beforeAll(async () => {
  tmp = await tempDir('attex-broker-life-');
  sim = await openSim(tmp.dir);
  m = toHex(sim.measurement);
});

afterAll(async () => {
  for (const b of open) await b.close();
  await tmp?.cleanup();
});

describe('shutdown', () => {
  it('finishes the request in flight, ending its connection, and answers one that arrives while closing with a problem', async () => {
    const b = await startBroker({ sim, dir: tmp.dir, resourcePolicy: policyFor(m) });
    const auditBefore = b.broker.ledger.size;
    // Each request's body is held back (the server has its headers once it answers 100
    // Continue), so both connections are busy when close() begins.
    const body = JSON.stringify({ version: '0.4.0', tee: 'snp', 'extra-params': '' });
    const busy = async () => {
      const conn = await rawConnection(b.url);
      const continued = new Promise((r) => conn.socket.once('data', r));
      conn.socket.write(`POST /kbs/v0/auth HTTP/1.1\r\nHost: x\r\nexpect: 100-continue\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`);
      expect(String(await continued)).toMatch(/^HTTP\/1\.1 100 /);
      return conn;
    };
    const [one, two] = [await busy(), await busy()];
    const fresh = await rawConnection(b.url); // open, nothing sent yet
    const closing = b.close();
    await new Promise((r) => setTimeout(r, 50));
    // The first finishes; a request pipelined behind it while closing is refused with a problem,
    // and that last answer ends the connection (the first's answer does not, since the request
    // behind it still needs one). The second connection's next request is refused the same way.
    one.socket.write(`${body}GET /kbs/v0/resource/app/key/db HTTP/1.1\r\nHost: x\r\n\r\n`);
    const [, first = '', pipelined = ''] = (await one.closed).split(/(?=HTTP\/1\.1 )/);
    expect(first).toMatch(/^HTTP\/1\.1 200 /);
    expect(JSON.parse(first.slice(first.indexOf('\r\n\r\n') + 4))).toHaveProperty('nonce');
    expect(pipelined).toMatch(/^HTTP\/1\.1 503 [^]*connection: close[^]*"code":"broker\.shutting-down"/i);
    two.socket.write(`${body.slice(0, -1)}`);
    const second = await new Promise<string>((resolve) => {
      two.socket.once('data', (d: Buffer) => resolve(String(d)));
      two.socket.write(`}`);
    });
    fresh.socket.write(`GET /kbs/v0/resource/app/key/db HTTP/1.1\r\nHost: x\r\n\r\n`);
    const late = await fresh.closed;
    await closing;
    expect(second).toMatch(/^HTTP\/1\.1 200 /);
    expect(late).toMatch(/^HTTP\/1\.1 503 [^]*content-type: application\/problem\+json[^]*"code":"broker\.shutting-down"/i);
    expect(late).toMatch(/retry-after: 1/i);
    expect(late + second + pipelined).not.toContain('lifecycle-secret');
    // Issuing a nonce is not audited, and a request refused while closing is not either (the
    // audit log may already be closing).
    expect(b.broker.ledger.size).toBe(auditBefore);
  });
});

describe('shutdown with slow work and keep-alive clients', () => {
  it('cuts a request past the grace period but waits for its handler before the audit log closes', async () => {
    const b = await startBroker({ sim, dir: tmp.dir, resourcePolicy: policyFor(m), verifyDelayMs: 2500 });
    const { cookie, nonce } = await auth(b.url);
    const key = await teeKey();
    const attest = call(`${b.url}/kbs/v0/attest`, { headers: { cookie }, body: await attestationFor(sim, { nonce, 'tee-pubkey': key.pub }) }).then(() => 'answered', () => 'cut');
    await new Promise((r) => setTimeout(r, 50));
    const start = performance.now();
    await b.close();
    expect(await attest).toBe('cut');
    // close() returned only once the attestation's handler had finished with the audit log.
    expect(performance.now() - start).toBeGreaterThan(2300);
    expect(b.logs.filter((l) => l.includes('broker.audit'))).toEqual([]);
  });

  it('ends keep-alive connections with the responses it sends while closing', async () => {
    const b = await startBroker({ sim, dir: tmp.dir, resourcePolicy: policyFor(m), verifyDelayMs: 300 });
    const { cookie, nonce } = await auth(b.url);
    const key = await teeKey();
    const attest = call(`${b.url}/kbs/v0/attest`, { headers: { cookie }, body: await attestationFor(sim, { nonce, 'tee-pubkey': key.pub }) });
    await new Promise((r) => setTimeout(r, 50));
    const start = performance.now();
    await b.close();
    expect((await attest).status).toBe(200);
    expect(performance.now() - start).toBeLessThan(1500);
  });
});

describe('per-address rate limit', () => {
  it('refuses a flood with 429 and Retry-After before any work, without growing the audit log', async () => {
    const b = await broker({ rateLimit: { ratePerSecond: 0.01, burst: 3 } });
    const before = b.broker.ledger.size;
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await call(`${b.url}/kbs/v0/auth`, { body: { bogus: true } })).status);
    expect(statuses.slice(0, 3)).toEqual([400, 400, 400]);
    expect(statuses.slice(3)).toEqual([429, 429, 429]);
    const limited = await call(`${b.url}/kbs/v0/auth`, { body: { version: '0.4.0', tee: 'snp', 'extra-params': '' } });
    expect(limited.status).toBe(429);
    expect(limited.json).toMatchObject({ code: 'broker.rate-limited', status: 429 });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // The three malformed requests were audited; the refused flood was not.
    expect(b.broker.ledger.size - before).toBe(3);
  });
});

describe('injected clock', () => {
  it('an expired nonce is refused and the refusal audited', async () => {
    let now = Date.now();
    const b = await broker({ clock: () => new Date(now), sessionTtlSeconds: 60 });
    const { cookie, nonce } = await auth(b.url);
    const key = await teeKey();
    const body = await attestationFor(sim, { nonce, 'tee-pubkey': key.pub });
    now += 61_000;
    const before = b.broker.ledger.size;
    const res = await call(`${b.url}/kbs/v0/attest`, { body, headers: { cookie } });
    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ type: 'https://github.com/confidential-containers/kbs/errors/ExpiredCookie', code: 'broker.session-expired' });
    const entries = (await b.auditEntries()).slice(before);
    expect(entries).toMatchObject([{ event: 'attest', decision: 'deny', reason: 'broker.session-expired', status: 401 }]);
  });

  it('an expired token and its session are refused', async () => {
    let now = Date.now();
    const b = await broker({ clock: () => new Date(now), tokenTtlSeconds: 120 });
    const a = await attestSim(b.url, sim);
    expect(a.res.status).toBe(200);
    expect((await call(`${b.url}/kbs/v0/resource/app/key/db`, { headers: { authorization: `Bearer ${a.token}` } })).status).toBe(200);
    now += 121_000;
    const before = b.broker.ledger.size;
    const bearer = await call(`${b.url}/kbs/v0/resource/app/key/db`, { headers: { authorization: `Bearer ${a.token}` } });
    expect(bearer.status).toBe(401);
    expect(bearer.json).toMatchObject({ code: 'broker.token-expired', type: 'https://github.com/confidential-containers/kbs/errors/TokenVerifierError' });
    const cookie = await call(`${b.url}/kbs/v0/resource/app/key/db`, { headers: { cookie: a.cookie } });
    expect(cookie.status).toBe(401);
    expect(cookie.json['code']).toBe('broker.session-expired');
    const entries = (await b.auditEntries()).slice(before);
    expect(entries.map((e) => [e.decision, e.reason])).toEqual([['deny', 'broker.token-expired'], ['deny', 'broker.session-expired']]);
  });
});

describe('trust and appraisal', () => {
  it('simulated evidence when the broker does not trust simulated roots', async () => {
    const b = await broker({ allowSimulated: false, appraisalPolicy: appraisalPolicyFor(m, { allowSimulated: false }) });
    const before = b.broker.ledger.size;
    const a = await attestSim(b.url, sim);
    expect(a.res.status).toBe(401);
    expect(a.res.json).toMatchObject({ type: 'https://github.com/confidential-containers/kbs/errors/AttestationFailed', code: 'attestation.simulated-root' });
    expect(String(a.res.json['detail'])).toMatch(/simulated/i);
    const [entry] = (await b.auditEntries()).slice(before);
    expect(entry).toMatchObject({ event: 'attest', decision: 'deny', reason: 'attestation.simulated-root', simulated: true });
    expect((await call(`${b.url}/kbs/v0/resource/app/key/db`, { headers: { cookie: a.cookie } })).status).toBe(401);
  });

  it('a measurement the appraisal policy does not list', async () => {
    const b = await broker({ appraisalPolicy: appraisalPolicyFor('cd'.repeat(48)) });
    const before = b.broker.ledger.size;
    const a = await attestSim(b.url, sim);
    expect(a.res.status).toBe(401);
    expect(a.res.json['code']).toBe('appraisal.measurement');
    const [entry] = (await b.auditEntries()).slice(before);
    expect(entry).toMatchObject({ decision: 'deny', reason: 'appraisal.measurement', measurement: m, appraisal: { status: 'contraindicated' } });
  });
});

describe('client', () => {
  it('is not ready until attested, retries an unreachable broker with backoff, then gets its secrets', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const session = openBrokerSession({
      brokerUrl: `http://127.0.0.1:${port}`,
      provider: simProvider({ stateDir: path.join(tmp.dir, 'sim') }),
      resources: ['app/key/db'],
      retry: { attempts: 40, baseDelayMs: 20, maxDelayMs: 150 },
      renew: false,
    });
    try {
      expect(session.ready).toBe(false);
      expect(session.secrets.has('app/key/db')).toBe(false);
      await new Promise((r) => setTimeout(r, 300));
      expect(session.ready).toBe(false);
      await broker({ port });
      await session.whenReady;
      expect(session.ready).toBe(true);
      expect(new TextDecoder().decode(session.secrets.get('app/key/db'))).toBe('lifecycle-secret');
    } finally {
      session.close();
    }
  });

  it('renews before the token expires', async () => {
    const b = await broker({ tokenTtlSeconds: 4 });
    const renewed = new Promise<Error | null>((resolve) => {
      void attestAndFetch({
        brokerUrl: b.url,
        provider: simProvider({ stateDir: path.join(tmp.dir, 'sim') }),
        resources: ['app/key/db'],
        renewMarginSeconds: 3,
        onRenew: resolve,
      }).then((s) => {
        first = s;
      });
    });
    let first: Awaited<ReturnType<typeof attestAndFetch>> | undefined;
    try {
      expect(await renewed).toBeNull();
      expect(first).toBeDefined();
      const s = first!;
      expect(s.ready).toBe(true);
      const attests = (await b.auditEntries()).filter((e) => e.decision === 'token-issued');
      expect(attests).toHaveLength(2);
      expect(attests[0]!.tokenId).not.toBe(attests[1]!.tokenId);
      expect(s.token).toBeTypeOf('string');
      expect(new TextDecoder().decode(s.secrets.get('app/key/db'))).toBe('lifecycle-secret');
    } finally {
      first?.close();
    }
  });

  it('a policy refusal is final: no retry, a typed error with the problem code', async () => {
    const b = await broker();
    const before = b.broker.ledger.size;
    const err = await attestAndFetch({
      brokerUrl: b.url,
      provider: simProvider({ stateDir: path.join(tmp.dir, 'sim') }),
      resources: ['app/other/db'],
      retry: { attempts: 5, baseDelayMs: 1 },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrokerCallError);
    expect(err).toMatchObject({ code: 'broker.policy.no-rule', status: 403, retryable: false });
    expect((await b.auditEntries()).slice(before).filter((e) => e.decision === 'token-issued')).toHaveLength(1);
  });

  it('backoff is exponential with full jitter, capped', () => {
    expect(backoffDelay(0, 100, 1000, () => 0.999)).toBe(99);
    expect(backoffDelay(3, 100, 1000, () => 0.5)).toBe(400);
    expect(backoffDelay(10, 100, 1000, () => 0.999)).toBe(999);
    expect(backoffDelay(5, 100, 1000, () => 0)).toBe(0);
  });
});

describe('real vendor evidence', () => {
  it('a genuine Milan report (go-sev-guest, debug guest) verifies against the AMD roots but is refused: no binding, debug', async () => {
    const repoRoot = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
    const vector = path.resolve(repoRoot, '../shared/vectors/snp/milan-v2-go-sev-guest');
    const pinned = new Date('2022-10-24T00:00:00Z');
    const b = await broker({ clock: () => pinned, allowSimulated: false, appraisalPolicy: appraisalPolicyFor(m, { allowSimulated: false }) });
    const { cookie, nonce } = await auth(b.url);
    const key = await teeKey();
    const evidence = {
      kind: 'snp',
      evidence: (await readFile(path.join(vector, 'report.bin'))).toString('base64'),
      certs: [(await readFile(path.join(vector, 'vcek.der'))).toString('base64')],
    };
    const before = b.broker.ledger.size;
    const res = await call(`${b.url}/kbs/v0/attest`, { body: { 'runtime-data': { nonce, 'tee-pubkey': key.pub }, 'tee-evidence': evidence }, headers: { cookie } });
    expect(res.status).toBe(401);
    expect(res.json['code']).toBe('broker.binding-mismatch');
    const [entry] = (await b.auditEntries()).slice(before);
    expect(entry).toMatchObject({ decision: 'deny', simulated: false, measurement: 'b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01', appraisal: { status: 'contraindicated', tee: 'snp' } });
    expect(entry!.reasons).toEqual(expect.arrayContaining(['broker.binding-mismatch', 'appraisal.debug', 'appraisal.measurement']));
  });
});
