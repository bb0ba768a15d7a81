/**
 * Admission and failure paths of a real executor: rate limits, a full queue, a sandbox worker
 * dying mid-action, idempotent retries and a graceful shutdown with an action in flight.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ledger } from '../../src/ledger/index.ts';
import { loadOrCreateLogKey } from '../../src/server/index.ts';
import { loadVerifyTrust, verifyBundle } from '../../src/verify/index.ts';
import { type Reply, dispatch, newCaller, rawConnection, send, signedHeaders, startTestExecutor } from './helpers.ts';

const callers = {
  rate: newCaller('rate'),
  busy: newCaller('busy'),
  other: newCaller('other'),
  crash: newCaller('crash'),
  idem: newCaller('idem'),
  idemAction: newCaller('idem-action'),
  stop: newCaller('stop'),
};

let dir: string;
let ex: Awaited<ReturnType<typeof startTestExecutor>>;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'attex-admission-'));
  ex = await startTestExecutor({
    dir,
    actions: ['transform', 'slow', 'crash-worker'],
    callers: Object.values(callers),
    // One worker, nothing queued behind its run, no waiting room: a second concurrent action
    // is refused at once.
    limits: { poolSize: 1, workerQueueDepth: 0, maxQueued: 0, ratePerSecond: 0.5, burst: 3, workerHeapMb: 32, shutdownGraceMs: 20_000 },
  });
});

afterAll(async () => {
  await ex?.close();
  await rm(dir, { recursive: true, force: true });
});

const input = { items: [{ category: 'x', amount: 1 }] };

async function bundleFor(r: Reply) {
  const bundle = await send(ex.url, 'GET', `/v1/receipts/${String(r.body['invocationId'])}`, undefined, {});
  expect(bundle.status).toBe(200);
  const trust = await loadVerifyTrust(
    { logVerifierKey: ex.executor.ledger.verifierKey, simulatedStateDir: ex.config.evidence.simStateDir!, allowSimulated: true },
    { baseDir: dir },
  );
  return verifyBundle(bundle.body, trust);
}

async function actionsCounted(action: string): Promise<number> {
  const res = await request(new URL('/metrics', ex.url));
  const text = await res.body.text();
  let n = 0;
  for (const m of text.matchAll(new RegExp(`^attex_actions_total\\{action="${action}",outcome="[a-z]+"\\} (\\d+)`, 'gm'))) n += Number(m[1]);
  return n;
}

async function poolRunning(): Promise<number> {
  const res = await request(new URL('/metrics', ex.url));
  const m = /^attex_pool_running (\d+)/m.exec(await res.body.text());
  return Number(m?.[1] ?? -1);
}

describe('admission and failures', () => {
  it('a caller over its rate limit gets 429 with Retry-After, and nothing runs', async () => {
    const before = ex.executor.ledgerSize();
    const replies: Reply[] = [];
    for (let i = 0; i < 5; i++) replies.push(await dispatch(ex.url, 'transform', input, callers.rate));
    const ok = replies.filter((r) => r.status === 200).length;
    const limited = replies.filter((r) => r.status === 429);
    expect(ok).toBe(3);
    expect(limited.length).toBe(2);
    for (const r of limited) {
      expect(r.body['code']).toBe('rate-limited');
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    expect(ex.executor.ledgerSize()).toBe(before + ok);
    // Rate limits are per caller: another caller is unaffected.
    expect((await dispatch(ex.url, 'transform', input, callers.other)).status).toBe(200);
  });

  it('a full queue answers 503 with Retry-After while the running action completes with its receipt', async () => {
    const first = dispatch(ex.url, 'slow', {}, callers.busy); // spins until its 1.5 s limit
    while ((await poolRunning()) < 1) await new Promise((r) => setTimeout(r, 20));
    const before = ex.executor.ledgerSize();
    const refused = await dispatch(ex.url, 'transform', input, callers.other);
    expect(refused.status).toBe(503);
    expect(refused.body['code']).toBe('server.overloaded');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(ex.executor.ledgerSize()).toBe(before);
    const done = await first;
    expect(done.status).toBe(422);
    expect((done.body['error'] as { code: string }).code).toBe('sandbox.timeout');
    const v = await bundleFor(done);
    expect(v.verified).toBe(true);
    expect(v.receipt?.errorCode).toBe('sandbox.timeout');
  });

  it('a worker dying mid-action is a 500 whose receipt records the crash; the pool recovers', async () => {
    const r = await dispatch(ex.url, 'crash-worker', { objects: 3_000_000 }, callers.crash);
    expect(r.status).toBe(500);
    expect(r.body['outcome']).toBe('error');
    expect((r.body['error'] as { code: string }).code).toBe('sandbox.worker-crashed');
    expect(typeof r.body['receipt']).toBe('string');
    const v = await bundleFor(r);
    expect(v.verified).toBe(true);
    expect(v.receipt?.outcome).toBe('error');
    expect(v.receipt?.errorCode).toBe('sandbox.worker-crashed');
    expect(v.receipt?.component.name).toBe('crash-worker');
    const after = await dispatch(ex.url, 'transform', input, callers.other);
    expect(after.status).toBe(200);
  });

  it('an Idempotency-Key retry returns the first result without running again', async () => {
    const before = ex.executor.ledgerSize();
    const first = await dispatch(ex.url, 'transform', input, callers.idem, { 'idempotency-key': 'order-42' });
    const ranBefore = await actionsCounted('transform');
    const second = await dispatch(ex.url, 'transform', input, callers.idem, { 'idempotency-key': 'order-42' });
    // A replay ran nothing and is not counted as an action.
    expect(await actionsCounted('transform')).toBe(ranBefore);
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(first.body['replayed']).toBe(false);
    expect(second.body['replayed']).toBe(true);
    expect(second.body['invocationId']).toBe(first.body['invocationId']);
    expect(second.body['receipt']).toBe(first.body['receipt']);
    expect(second.body['output']).toEqual(first.body['output']);
    expect(ex.executor.ledgerSize()).toBe(before + 1);
    const conflict = await dispatch(ex.url, 'transform', { items: [] }, callers.idem, { 'idempotency-key': 'order-42' });
    expect(conflict.status).toBe(409);
    expect(conflict.body['code']).toBe('request.idempotency-conflict');
    // The same key and body for another action is a conflict too, not the first action's result.
    expect((await dispatch(ex.url, 'transform', input, callers.idemAction, { 'idempotency-key': 'order-7' })).status).toBe(200);
    const otherAction = await dispatch(ex.url, 'slow', input, callers.idemAction, { 'idempotency-key': 'order-7' });
    expect(otherAction.status).toBe(409);
    expect(otherAction.body['code']).toBe('request.idempotency-conflict');
    // The key is scoped to its caller: another caller's same key is a new invocation.
    const otherCaller = await dispatch(ex.url, 'transform', input, callers.other, { 'idempotency-key': 'order-42' });
    expect(otherCaller.body['invocationId']).not.toBe(first.body['invocationId']);
    expect(ex.executor.ledgerSize()).toBe(before + 3);
  });

  it('an Idempotency-Key must be signed: one added or changed on the way is refused and runs nothing', async () => {
    const before = ex.executor.ledgerSize();
    const body = new TextEncoder().encode(JSON.stringify(input));
    const signed = await signedHeaders('transform', body, callers.idem);
    const added = await send(ex.url, 'POST', '/v1/actions/transform', body, { ...signed, 'idempotency-key': 'order-unsigned' });
    expect(added.status).toBe(401);
    expect(added.body['code']).toBe('auth.incomplete-coverage');
    const keyed = await signedHeaders('transform', body, callers.idem, { 'idempotency-key': 'order-signed' });
    expect(keyed['signature-input']).toContain('"idempotency-key"');
    const changed = await send(ex.url, 'POST', '/v1/actions/transform', body, { ...keyed, 'idempotency-key': 'order-other' });
    expect(changed.status).toBe(401);
    expect(changed.body['code']).toBe('auth.bad-signature');
    expect(ex.executor.ledgerSize()).toBe(before);
  });

  it('shutdown lets the in-flight action finish and its receipt reach the log, and idle connections do not hold it', async () => {
    // The in-flight action goes over a plain socket, so that a second request can follow it on
    // the same (busy, hence still open) connection once shutdown has begun.
    const body = new TextEncoder().encode(JSON.stringify({ spins: 2_000_000 }));
    const headers = await signedHeaders('slow', body, callers.stop);
    // Open, but no request sent: ended when shutdown begins (it used to hold it for the grace period).
    const idle = await rawConnection(ex.url);
    const { socket, closed: answer } = await rawConnection(ex.url);
    socket.write(`POST /v1/actions/slow HTTP/1.1\r\nHost: x\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}content-length: ${body.length}\r\n\r\n`);
    socket.write(body);
    while ((await poolRunning()) < 1) await new Promise((r) => setTimeout(r, 10));
    const start = performance.now();
    const closing = ex.close();
    expect(await idle.closed).toBe('');
    await new Promise((r) => setTimeout(r, 20));
    socket.write('GET /v1/log/checkpoint HTTP/1.1\r\nHost: x\r\n\r\n');
    const [first = '', second = ''] = (await answer).split(/(?=HTTP\/1\.1 )/);
    await closing;
    // Well inside the 20 s grace period: nothing held the shutdown but the action itself.
    expect(performance.now() - start).toBeLessThan(10_000);
    const doneBody = JSON.parse(first.slice(first.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
    const done = { status: Number(first.split(' ')[1]), body: doneBody };
    expect(done.status).toBe(200);
    // A request sent behind it on that connection once shutdown began is not run: it is answered
    // 503 server.shutting-down, and that last answer ends the connection. (The action's own answer
    // no longer closes it while a request behind it is in progress: that one could have been
    // admitted before shutdown, and its answer would have been lost.)
    expect(second).toMatch(/^HTTP\/1\.1 503 /);
    expect(second).toContain('"code":"server.shutting-down"');
    expect(second).toMatch(/connection: close/i);
    await expect(request(new URL('/healthz', ex.url))).rejects.toThrow();
    const { privateKey } = await loadOrCreateLogKey(ex.config.stateDir);
    const ledger = await Ledger.open(path.join(ex.config.stateDir, 'log'), { origin: ex.config.log.origin, signer: { name: ex.config.log.origin, privateKey }, checkpointInterval: 0 });
    try {
      expect(ledger.findByKey(String(done.body['invocationId']))).toBe(done.body['logIndex']);
      expect(ledger.checkpoint().split('\n')[1]).toBe(String(ledger.size));
    } finally {
      await ledger.close();
    }
  });
});
