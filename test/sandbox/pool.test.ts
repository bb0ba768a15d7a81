import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileKvStore, MemoryKvStore, SandboxPool, type SecretSource } from '../../src/sandbox/index.ts';
import { build, buildAndLoad, examplesDir, fixturesDir, load } from './helpers.ts';

const EXAMPLES = ['transform', 'fetch-quote', 'sign-payload', 'kv-counter', 'wat-echo'];
const FIXTURES = ['hostile-loop', 'hostile-memory', 'hostile-output', 'hostile-fetch', 'hostile-secrets', 'hostile-chatty', 'hostile-trap', 'stateful', 'memory-residue', 'secret-header'];

let pool: SandboxPool;
let server: Server;
let port = 0;
let connections = 0;
let requests = 0;
let lastAuthorization: string | undefined;
// An origin that echoes request headers back: granted for HTTP, never bound to a secret.
let echo: Server;
let echoPort = 0;
let echoRequests = 0;

function secretsOf(map: Record<string, string>): SecretSource {
  return {
    has: (name) => name in map,
    get: (name) => (name in map ? new TextEncoder().encode(map[name]) : undefined),
  };
}

beforeAll(async () => {
  server = createServer((req, res) => {
    requests++;
    lastAuthorization = req.headers.authorization;
    res.setHeader('content-type', 'application/json');
    const token = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
    // A bound origin that quotes the secret back, in the forms an echo is likely to use.
    if (req.url === '/echo') res.end(JSON.stringify(req.headers));
    else if (req.url === '/echo-base64') res.end(JSON.stringify({ seen: Buffer.from(token).toString('base64') }));
    else if (req.url === '/echo-percent') res.end(`seen=${encodeURIComponent(token)}`);
    else if (req.url === '/echo-header') res.setHeader('x-seen', `token ${token}`).end('{}');
    else if (req.url?.startsWith('/big')) res.end(JSON.stringify({ pad: 'y'.repeat(200_000) }));
    else res.end(JSON.stringify({ price: 42.5, currency: 'EUR', path: req.url }));
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
  echo = createServer((req, res) => {
    echoRequests++;
    res.end(JSON.stringify(req.headers));
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  echoPort = (echo.address() as { port: number }).port;

  const loaded = await buildAndLoad([...EXAMPLES.map((n) => path.join(examplesDir, n)), ...FIXTURES.map((n) => path.join(fixturesDir, n))]);
  const local = `http://127.0.0.1:${port}`;
  const quote = await load(loaded.get('fetch-quote')!.built, { grants: { http: [local] } });
  const fetcher = await load(loaded.get('hostile-fetch')!.built, { grants: { http: [`http://rebind.attex.test:${port}`, `http://*.wild.attex.test:${port}`] } });
  const bound = await load(loaded.get('secret-header')!.built, {
    grants: {
      http: [local, `http://127.0.0.1:${echoPort}`],
      secret_headers: [{ secret: 'api-token', header: 'authorization', origins: [local] }],
    },
  });
  const replaced = new Set(['fetch-quote', 'hostile-fetch', 'secret-header']);
  const components = [...loaded.values()].map((v) => v.loaded).filter((c) => !replaced.has(c.name));
  pool = await SandboxPool.create({
    size: 2,
    components: [...components, quote, fetcher, bound],
    // Every test name resolves to loopback: the address check must refuse it.
    resolver: async (host) => (host.endsWith('.attex.test') ? ['127.0.0.1'] : []),
  });
});

afterAll(async () => {
  await pool?.close();
  await new Promise((resolve) => server?.close(resolve));
  await new Promise((resolve) => echo?.close(resolve));
});

describe('example actions', () => {
  it('transform reshapes JSON and reports guest errors as action.failed', async () => {
    const r = await pool.run('transform', JSON.stringify({ items: [{ category: 'a', amount: 2 }, { category: 'a', amount: 3 }, { category: 'b', amount: 1 }] }));
    expect(r.ok).toBe(true);
    expect(JSON.parse(r.output!)).toEqual({ totals: { a: 5, b: 1 }, count: 3, largest: { category: 'a', amount: 3 } });
    expect(r.usage.hostCalls).toBe(0);
    const bad = await pool.run('transform', '{"nope":1}');
    expect(bad.ok).toBe(false);
    expect(bad.error?.code).toBe('action.failed');
    expect(bad.error?.message).toContain('invalid-input');
  });

  it('a component written in WAT runs (wat-echo)', async () => {
    const r = await pool.run('wat-echo', '{"hello":"wat"}');
    expect(r).toMatchObject({ ok: true, output: '{"hello":"wat"}' });
  });

  it('sign-payload MACs with a secret it never sees', async () => {
    const key = 'k3y-material-do-not-leak';
    const r = await pool.run('sign-payload', JSON.stringify({ payload: { amount: 10 } }), { secrets: secretsOf({ 'signing-key': key }) });
    expect(r.ok).toBe(true);
    const out = JSON.parse(r.output!);
    expect(out.signature).toBe(createHmac('sha256', key).update(JSON.stringify({ amount: 10 })).digest('hex'));
    expect(r.output).not.toContain(key);
    expect(r.usage.secretsUsed).toEqual(['signing-key']);
    expect(r.usage.secretsRevealed).toEqual([]);
  });

  it('sign-payload gets a typed denial for a secret outside its grant', async () => {
    const r = await pool.run('sign-payload', JSON.stringify({ payload: 1, key: 'root-key' }), { secrets: secretsOf({ 'root-key': 'x' }) });
    expect(r.ok).toBe(false);
    expect(r.error?.message).toContain('secret-denied');
    expect(r.usage.denied).toEqual(['secret:root-key']);
  });

  it('kv-counter counts in memory and in a durable file store', async () => {
    const kv = new MemoryKvStore();
    expect(JSON.parse((await pool.run('kv-counter', '{"name":"a"}', { kv })).output!)).toEqual({ name: 'a', count: 1 });
    const second = await pool.run('kv-counter', '{"name":"a"}', { kv });
    expect(JSON.parse(second.output!)).toEqual({ name: 'a', count: 2 });
    expect(second.usage.kvOps).toEqual([{ op: 'get', bucket: 'counters', key: 'a' }, { op: 'set', bucket: 'counters', key: 'a' }]);
    const denied = await pool.run('kv-counter', '{"name":"a","bucket":"admin"}', { kv });
    expect(denied.error?.message).toContain('kv-access-denied');

    const dir = await mkdtemp(path.join(tmpdir(), 'attex-kv-'));
    try {
      await pool.run('kv-counter', '{"name":"f"}', { kv: new FileKvStore(dir) });
      const again = await pool.run('kv-counter', '{"name":"f"}', { kv: new FileKvStore(dir) });
      expect(JSON.parse(again.output!).count).toBe(2);
      expect(JSON.parse(await readFile(path.join(dir, 'counters.json'), 'utf8'))).toEqual({ f: Buffer.from('2').toString('base64') });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fetch-quote reaches an explicitly granted loopback origin', async () => {
    const before = requests;
    const r = await pool.run('fetch-quote', JSON.stringify({ symbol: 'ACME', endpoint: `http://127.0.0.1:${port}/v1/quote` }));
    expect(r.ok, JSON.stringify(r.error)).toBe(true);
    expect(JSON.parse(r.output!)).toEqual({ symbol: 'ACME', price: 42.5, currency: 'EUR' });
    expect(r.usage.hostsContacted).toEqual([`http://127.0.0.1:${port}`]);
    expect(r.usage.logs).toEqual([{ level: 'info', context: 'fetch-quote', message: 'quote for ACME' }]);
    expect(requests).toBe(before + 1);
  });

  it('fetch-quote refuses a response over max_http_response_bytes', async () => {
    const r = await pool.run('fetch-quote', JSON.stringify({ symbol: 'ACME', endpoint: `http://127.0.0.1:${port}/big` }));
    expect(r.ok).toBe(false);
    expect(r.error?.message).toContain('http-too-large');
  });
});

describe('capabilities are enforced by the host', () => {
  it('denied hosts are never contacted: ungranted origin, rebinding name, wildcard to loopback, metadata', async () => {
    const before = connections;
    const urls = [
      `http://127.0.0.1:${port}/`,
      `http://rebind.attex.test:${port}/`,
      `http://x.wild.attex.test:${port}/`,
      'http://169.254.169.254/latest/meta-data/',
      `http://allowed.attex.test.evil.example:${port}/`,
      `file:///etc/passwd`,
    ];
    for (const url of urls) {
      const r = await pool.run('hostile-fetch', JSON.stringify({ url }));
      expect(r.ok).toBe(true);
      expect(JSON.parse(r.output!), url).toMatchObject({ ok: false, tag: 'denied' });
      expect(r.usage.hostsContacted).toEqual([]);
    }
    expect(connections - before).toBe(0);
  });

  it('a secret goes only into the header and to the origins its binding names', async () => {
    const token = 's3cr3t-token-value';
    const secrets = secretsOf({ 'api-token': token, other: 'zzz' });
    const send = async (url: string, header: string, secret = 'api-token') => {
      const r = await pool.run('secret-header', JSON.stringify({ url, header, secret }), { secrets });
      expect(r.ok, JSON.stringify(r.error)).toBe(true);
      expect(r.output).not.toContain(token);
      return { out: JSON.parse(r.output!), usage: r.usage };
    };
    const sent = await send(`http://127.0.0.1:${port}/v1`, 'Authorization');
    expect(sent.out).toMatchObject({ ok: true, status: 200 });
    expect(lastAuthorization).toBe(`Bearer ${token}`);
    expect(sent.usage.secretsUsed).toEqual(['api-token']);

    const echoedBefore = echoRequests;
    // Granted for HTTP but not bound to the secret: an echo would reveal it, so nothing is sent.
    const echoed = await send(`http://127.0.0.1:${echoPort}/`, 'authorization');
    expect(echoed.out).toMatchObject({ ok: false, tag: 'denied' });
    expect(echoed.out.message).toContain('grants.secret_headers');
    expect(echoed.usage).toMatchObject({ secretsUsed: [], hostsContacted: [] });
    expect(echoRequests).toBe(echoedBefore);

    // A bound origin that echoes the secret back: sent (so recorded as used), but the response
    // is withheld from the guest.
    for (const where of ['/echo', '/echo-base64', '/echo-percent', '/echo-header']) {
      const quoted = await send(`http://127.0.0.1:${port}${where}`, 'authorization');
      expect(quoted.out, where).toMatchObject({ ok: false, tag: 'denied' });
      expect(quoted.out.message).toContain('quotes a secret');
      expect(quoted.usage.secretsUsed).toEqual(['api-token']);
    }

    const before = requests;
    for (const [header, secret] of [['x-api-key', 'api-token'], ['authorization', 'other']] as const) {
      const denied = await send(`http://127.0.0.1:${port}/v1`, header, secret);
      expect(denied.out, `${header} ${secret}`).toMatchObject({ ok: false, tag: 'denied' });
      expect(denied.usage.secretsUsed).toEqual([]);
    }
    expect(requests).toBe(before);
  });

  it('secrets outside the grant are denied; reveal is recorded', async () => {
    const secrets = secretsOf({ 'granted-key': 'abc', other: 'zzz' });
    const denied = await pool.run('hostile-secrets', '{"name":"other"}', { secrets });
    expect(JSON.parse(denied.output!)).toEqual({ ok: false, tag: 'denied' });
    const revealed = await pool.run('hostile-secrets', '{"name":"granted-key","reveal":true}', { secrets });
    expect(JSON.parse(revealed.output!)).toEqual({ ok: true, length: 3 });
    expect(revealed.usage.secretsRevealed).toEqual(['granted-key']);
  });
});

describe('limits', () => {
  it('an infinite loop ends within timeout + 500 ms and the pool keeps serving', async () => {
    const start = performance.now();
    const r = await pool.run('hostile-loop', '{}');
    expect(r.error?.code).toBe('sandbox.timeout');
    expect(performance.now() - start).toBeLessThan(300 + 500);
    expect((await pool.run('transform', '{"items":[]}')).ok).toBe(true);
  });

  it('a memory bomb fails at its cap', async () => {
    const r = await pool.run('hostile-memory', '{}');
    expect(r.error?.code).toBe('sandbox.memory');
    expect(r.usage.memoryBytes).toBeLessThanOrEqual(16 * 1048576);
  });

  it('huge output is refused', async () => {
    expect((await pool.run('hostile-output', '{}')).error?.code).toBe('sandbox.output-too-large');
  });

  it('host calls beyond max_host_calls abort the action', async () => {
    const r = await pool.run('hostile-chatty', '{}', { kv: new MemoryKvStore() });
    expect(r.error?.code).toBe('sandbox.host-calls-exceeded');
    expect(r.usage.hostCalls).toBe(11);
  });

  it('a trap is reported as sandbox.trap', async () => {
    expect((await pool.run('hostile-trap', '{}')).error?.code).toBe('sandbox.trap');
  });

  it('no state leaks between runs: every run gets a fresh instance', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await pool.run('stateful', JSON.stringify({ i }));
      expect(JSON.parse(r.output!)).toEqual({ calls: 1, seen: 1 });
    }
  });

  it('linear memory starts zeroed at its initial size in every instance, though workers reuse it', async () => {
    // 'memory-residue' counts a byte no data segment covers and grows memory on long input.
    for (const input of ['{}', '{}', '{"grow":"................"}', '{}', '{}', '{}']) {
      const r = await pool.run('memory-residue', input);
      expect(JSON.parse(r.output!)).toEqual({ seen: 0, pages: 1 });
    }
  });

  it('workerCpuMicros reports the workers\' CPU, which grows as they run actions (what benchmarks read)', async () => {
    const before = await pool.workerCpuMicros();
    expect(before).toBeGreaterThan(0);
    const input = JSON.stringify({ items: [{ category: 'a', amount: 1 }] });
    for (let i = 0; i < 20; i++) expect((await pool.run('transform', input)).ok).toBe(true);
    const after = await pool.workerCpuMicros();
    // Each run instantiates and runs a QuickJS component: well over 100 µs of worker CPU apiece.
    expect(after - before).toBeGreaterThan(20 * 100);
  });

  it('rejects bad input and unknown actions with typed codes', async () => {
    expect((await pool.run('transform', '{not json')).error?.code).toBe('sandbox.invalid-input');
    expect((await pool.run('nope', '{}')).error?.code).toBe('sandbox.unknown-action');
  });

  it('RSS stays bounded across 100 hostile runs in a row', async () => {
    const hostile = ['hostile-memory', 'hostile-output', 'hostile-trap', 'hostile-chatty'];
    for (let i = 0; i < 8; i++) await pool.run(hostile[i % hostile.length]!, '{}', { kv: new MemoryKvStore() });
    const baseline = process.memoryUsage().rss;
    for (let i = 0; i < 100; i++) {
      const r = await pool.run(hostile[i % hostile.length]!, '{}', { kv: new MemoryKvStore() });
      expect(r.ok).toBe(false);
    }
    const growth = process.memoryUsage().rss - baseline;
    expect(growth).toBeLessThan(256 * 1048576);
    expect((await pool.run('transform', '{"items":[]}')).ok).toBe(true);
  });
});

describe('loading', () => {
  it('refuses a component whose imports exceed its manifest, at build and at load', async () => {
    await expect(build(path.join(fixturesDir, 'hostile-overreach'))).rejects.toMatchObject({ code: 'sandbox.imports-exceed-grant' });
    const quote = await build(path.join(examplesDir, 'fetch-quote'));
    await expect(load(quote, { grants: { http: [] } })).rejects.toMatchObject({ code: 'sandbox.imports-exceed-grant' });
  });
});

describe('invalid components', () => {
  it('refuses garbage and core modules with sandbox.invalid-component', async () => {
    const { loadComponent, parseManifest } = await import('../../src/sandbox/index.ts');
    const manifest = parseManifest({ name: 'junk', world: 'pure-action' });
    await expect(loadComponent(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]), manifest)).rejects.toMatchObject({ code: 'sandbox.invalid-component' });
    const core = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
    await expect(loadComponent(core, manifest)).rejects.toMatchObject({ code: 'sandbox.invalid-component' });
    const truncated = new Uint8Array([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0, 1, 0xff, 0xff]);
    await expect(loadComponent(truncated, manifest)).rejects.toMatchObject({ code: 'sandbox.invalid-component' });
  });
});
