import net from 'node:net';
import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { parse } from '@bytecodealliance/jco';
import { checkAddress, checkOrigin, excessImports, overrideManifest, parseManifest, specialAddressReason } from '../../src/sandbox/index.ts';
import { type FetchContext, type GuestRequest, guestFetch, pinnedLookup } from '../../src/sandbox/http.ts';
import { type HostRunContext, handleHostCall } from '../../src/sandbox/host.ts';
import { MemoryKvStore } from '../../src/sandbox/index.ts';
import { MemoryLeases } from '../../src/sandbox/memory-lease.ts';
import { MAX_TABLE_ENTRIES, MEMORY_IMPORT, capModuleMemory, importDefinedMemory } from '../../src/sandbox/wasm-memory.ts';

describe('manifest', () => {
  it('fills defaults and grants nothing by default', () => {
    const m = parseManifest({ name: 'a', world: 'pure-action' });
    expect(m.grants).toEqual({ http: [], secrets: [], secretHeaders: [], kv: [], config: [] });
    expect(m.limits.cpu_ms).toBe(m.limits.timeout_ms);
    expect(m.backend).toBe('quickjs');
  });

  it('refuses unknown keys, bad origins and out-of-range limits', () => {
    expect(() => parseManifest({ name: 'a', world: 'pure-action', grant: {} })).toThrow(/additional properties \(grant\)/);
    expect(() => parseManifest({ name: 'a', world: 'pure-action', grants: { http: ['example.com'] } })).toThrow(/grants\/http\/0/);
    expect(() => parseManifest({ name: 'a', world: 'pure-action', grants: { http: ['https://x.example/path'] } })).toThrow(/manifest-invalid|must match/);
    expect(() => parseManifest({ name: 'a', world: 'pure-action', limits: { memory_mb: 1 << 20 } })).toThrow(/memory_mb/);
    expect(() => parseManifest({ name: 'a', world: 'mystery' })).toThrow(/world/);
  });

  it('binds a secret to a header and granted origins, or refuses the manifest', () => {
    const base = { name: 'a', world: 'http-secrets-action' };
    const grants = { http: ['https://API.example.com', 'https://other.example'], secrets: ['token'] };
    const bind = (binding: object) => parseManifest({ ...base, grants: { ...grants, secret_headers: [binding] } });
    expect(bind({ secret: 'token', header: 'Authorization', origins: ['https://api.example.COM'] }).grants.secretHeaders)
      .toEqual([{ secret: 'token', header: 'authorization', origins: ['https://api.example.com'] }]);
    expect(() => bind({ secret: 'other', header: 'authorization', origins: ['https://api.example.com'] })).toThrow(/secret_headers\/0 names secret 'other', which grants.secrets does not grant/);
    expect(() => bind({ secret: 'token', header: 'authorization', origins: ['https://elsewhere.example'] })).toThrow(/origin 'https:\/\/elsewhere.example' is not in grants.http/);
    expect(() => bind({ secret: 'token', header: 'Host', origins: ['https://api.example.com'] })).toThrow(/header 'host' is set by the host/);
    expect(() => bind({ secret: 'token', header: 'x bad', origins: ['https://api.example.com'] })).toThrow(/secret_headers\/0\/header/);
    expect(() => bind({ secret: 'token', header: 'authorization', origins: [] })).toThrow(/origins/);
    expect(() => bind({ secret: 'token', header: 'authorization' })).toThrow(/origins/);
  });

  it('an override keeps the base secret bindings and re-checks them', () => {
    const m = parseManifest({ name: 'a', world: 'http-secrets-action', grants: { http: ['https://api.example.com'], secrets: ['token'], secret_headers: [{ secret: 'token', header: 'authorization', origins: ['https://api.example.com'] }] } });
    expect(overrideManifest(m, { limits: { timeout_ms: 500 } }).grants.secretHeaders).toEqual(m.grants.secretHeaders);
    // Moving the HTTP grant elsewhere must not carry the secret along to the new origin.
    expect(() => overrideManifest(m, { grants: { http: ['https://new.example'] } })).toThrow(/origin 'https:\/\/api.example.com' is not in grants.http/);
  });

  it('an override changes grants and limits only, and cpu_ms keeps following timeout_ms', () => {
    const m = parseManifest({ name: 'a', world: 'pure-action' });
    for (const key of ['name', 'world', 'entry', 'backend']) {
      expect(() => overrideManifest(m, { [key]: 'x' }), key).toThrow(new RegExp(`only grants and limits, not ${key}`));
    }
    expect(overrideManifest(m, { limits: { timeout_ms: 9000 } }).limits).toMatchObject({ timeout_ms: 9000, cpu_ms: 9000 });
    const pinned = parseManifest({ name: 'a', world: 'pure-action', limits: { cpu_ms: 100 } });
    expect(overrideManifest(pinned, { limits: { timeout_ms: 9000 } }).limits).toMatchObject({ timeout_ms: 9000, cpu_ms: 100 });
  });

  it('an import needs a non-empty grant', () => {
    const m = parseManifest({ name: 'a', world: 'http-action' });
    expect(excessImports(['attex:action/http@0.1.0', 'wasi:io/streams@0.2.12', 'wasi:logging/logging@0.1.0-draft'], m)).toEqual(['attex:action/http@0.1.0']);
    expect(excessImports(['wasi:sockets/tcp@0.2.0', 'wasi:io/streams@9.9.9', 'evil'], m)).toEqual(['wasi:sockets/tcp@0.2.0', 'wasi:io/streams@9.9.9', 'evil']);
  });
});

describe('outbound policy', () => {
  const grants = ['https://api.example.com', 'https://*.cdn.example.net:8443', 'http://10.0.0.5:8080'];
  it('matches scheme, host (with *. suffix) and port', () => {
    expect(checkOrigin('https://api.example.com/v1?x=1', grants).allowed).toBe(true);
    expect(checkOrigin('https://api.example.com:443/', grants).allowed).toBe(true);
    expect(checkOrigin('http://api.example.com/', grants).allowed).toBe(false);
    expect(checkOrigin('https://api.example.com:444/', grants).allowed).toBe(false);
    expect(checkOrigin('https://api.example.com.evil.org/', grants).allowed).toBe(false);
    expect(checkOrigin('https://a.b.cdn.example.net:8443/', grants).allowed).toBe(true);
    expect(checkOrigin('https://cdn.example.net:8443/', grants).allowed).toBe(false);
    // An empty label is not a name under the wildcard (and no receipt could record it).
    expect(checkOrigin('https://.cdn.example.net:8443/', grants).allowed).toBe(false);
    expect(checkOrigin('https://user:pw@api.example.com/', grants).allowed).toBe(false);
    expect(checkOrigin('not a url', grants).allowed).toBe(false);
  });

  it('classifies special addresses, including mapped IPv6', () => {
    for (const ip of [
      '127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:7f00:1',
      // The Azure wire server, former 6to4 relays, IETF assignments, IPv6 documentation and anything outside 2000::/3.
      '168.63.129.16', '192.88.99.1', '2002:c058:6301::1', '2001:2::1', '2001:20::1', '3fff::1', '5f00::1', '4000::1',
    ]) {
      expect(specialAddressReason(ip), ip).toBeDefined();
    }
    for (const ip of ['8.8.8.8', '1.1.1.1', '168.63.129.17', '2606:4700::1111', '2001:4860:4860::8888', '::ffff:8.8.8.8', '2002:808:808::1', '2a00:1450:4001:0811:0000:0000:0000:200e']) expect(specialAddressReason(ip), ip).toBeUndefined();
  });

  it('classifies IPv6 by value, whatever its text', () => {
    const cases: Array<[string, RegExp]> = [
      ['0:0:0:0:0:0:0:1', /loopback/],
      ['0000:0000:0000:0000:0000:0000:0000:0001', /loopback/],
      ['::0001', /loopback/],
      ['0:0:0:0:0:ffff:7f00:1', /loopback/],
      ['0:0:0:0:0:ffff:a9fe:a9fe', /metadata/],
      ['::FFFF:169.254.169.254', /metadata/],
      ['0:0:0:0:0:0:0:0', /unspecified/],
      ['FE80:0:0:0:0:0:0:1', /link-local/],
      ['fe80::1%eth0', /link-local/],
      ['2002:7f00:1::1', /6to4 of a loopback/],
      ['2001:0:4136:e378:8000:63bf:3fff:fdd2', /Teredo/],
      ['64:ff9b::a9fe:a9fe', /NAT64/],
      ['1::1', /reserved/],
      ['::1.2.3.4', /IPv4-compatible/],
    ];
    for (const [ip, reason] of cases) expect([ip, specialAddressReason(ip)]).toEqual([ip, expect.stringMatching(reason)]);
  });

  it('connects a request for a granted name to the one checked address (Node asks for all addresses)', async () => {
    const server = net.createServer((socket) => socket.end('pinned'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as net.AddressInfo;
      const reply = await new Promise<string>((resolve, reject) => {
        // A name that resolves nowhere: only the pinned lookup can make this connect.
        const socket = net.connect({ host: 'pinned.attex.invalid', port, lookup: pinnedLookup('127.0.0.1', 4) as never, autoSelectFamily: true });
        let data = '';
        socket.on('data', (d) => (data += d.toString()));
        socket.on('end', () => resolve(data));
        socket.on('error', reject);
      });
      expect(reply).toBe('pinned');
    } finally {
      server.close();
    }
  });

  it('lets a special address through only when the grant names that IP literal', () => {
    expect(checkAddress('10.0.0.5', '10.0.0.5', 'http://10.0.0.5:8080').allowed).toBe(true);
    expect(checkAddress('10.0.0.5', 'internal.example.com', 'http://internal.example.com').allowed).toBe(false);
    expect(checkAddress('93.184.216.34', 'example.com', 'https://example.com').allowed).toBe(true);
  });
});

describe('guestFetch', () => {
  const grant = { secret: 'token', header: 'authorization' };
  function context(over: Partial<FetchContext> & { port?: number } = {}) {
    const seen = { secretReads: 0, contacts: [] as string[] };
    const ctx: FetchContext = {
      grants: [`http://127.0.0.1:${over.port ?? 9}`, 'http://named.attex.test'],
      secretHeaderGrants: [{ ...grant, origins: [`http://127.0.0.1:${over.port ?? 9}`, 'http://named.attex.test'] }],
      maxResponseBytes: 1 << 20,
      deadline: performance.now() + 2000,
      resolver: async () => ['127.0.0.1'],
      ended: new AbortController().signal,
      secretValue: () => (seen.secretReads++, new TextEncoder().encode('s3cr3t')),
      secretsInUse: () => (seen.secretReads > 0 ? [new TextEncoder().encode('s3cr3t')] : []),
      onContact: (o) => void seen.contacts.push(o),
      ...over,
    };
    return { ctx, seen };
  }
  const request = (url: string, extra: Partial<GuestRequest> = {}): GuestRequest => ({ method: 'GET', url, headers: [], body: undefined, secretHeaders: [{ name: 'Authorization', secret: 'token', prefix: 'Bearer ' }], ...extra });

  it('reads no secret and contacts nobody before every check passed', async () => {
    // A bound secret, but the name resolves to loopback: refused, and the secret never read.
    const { ctx, seen } = context();
    expect(await guestFetch(request('http://named.attex.test/'), ctx)).toMatchObject({ tag: 'err', val: { tag: 'denied' } });
    for (const header of ['expect', 'x-forwarded-host', 'forwarded']) {
      expect(await guestFetch(request('http://127.0.0.1:9/', { headers: [[header, 'x']] }), ctx), header).toMatchObject({ tag: 'err', val: { tag: 'invalid-request' } });
    }
    expect(await guestFetch(request('http://127.0.0.1:9/', { headers: [['x-a', '\u010d\u010a']] }), ctx)).toMatchObject({ tag: 'err', val: { tag: 'invalid-request' } });
    expect(await guestFetch(request('http://127.0.0.1:9/', { body: new Uint8Array(2 << 20) }), ctx)).toMatchObject({ tag: 'err', val: { tag: 'invalid-request' } });
    expect(seen).toEqual({ secretReads: 0, contacts: [] });
  });

  it('a request of the wrong shape is refused before anything reads it (a worker taken over could send anything)', async () => {
    const { ctx, seen } = context();
    const sparse = (n: number) => { const a: unknown[] = []; a.length = n; return a; };
    const shapes: Array<[string, Partial<Record<keyof GuestRequest, unknown>>]> = [
      ['a header value that is a sparse array of 1e8', { headers: [['x-a', sparse(1e8)]] }],
      ['a url that is not a string', { url: sparse(1e8) }],
      ['a url of 100,000 characters', { url: `http://127.0.0.1:9/${'a'.repeat(100_000)}` }],
      ['an ArrayBuffer body of 8 MiB', { body: new ArrayBuffer(8 << 20) }],
      ['a string body', { body: 'x'.repeat(10) }],
      ['a secret-header prefix that is a sparse array', { secretHeaders: [{ name: 'authorization', secret: 'token', prefix: sparse(1e8) }] }],
      ['65 headers', { headers: Array.from({ length: 65 }, (_, i) => [`x-${i}`, 'v']) }],
    ];
    for (const [what, shape] of shapes) {
      const start = performance.now();
      expect(await guestFetch({ ...request('http://127.0.0.1:9/'), ...shape } as GuestRequest, ctx), what).toMatchObject({ tag: 'err', val: { tag: 'invalid-request' } });
      expect(performance.now() - start, what).toBeLessThan(100);
    }
    expect(seen).toEqual({ secretReads: 0, contacts: [] });
  });

  it('the host counts capability calls itself and refuses those past max_host_calls', async () => {
    const manifest = parseManifest({ name: 'a', world: 'secrets-action', grants: { secrets: ['token'] }, limits: { max_host_calls: 2 } });
    const ctx: HostRunContext = {
      grants: manifest.grants, limits: manifest.limits, deadline: performance.now() + 1000, secrets: { has: () => true, get: () => new Uint8Array([1]) },
      kv: new MemoryKvStore(), resolver: async () => [], usage: { hostsContacted: [], secretsUsed: [], secretsRevealed: [], kvOps: [] }, ended: new AbortController().signal, calls: { count: 0 },
    };
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await handleHostCall(ctx, 'secret.reveal', ['token']));
    expect(results.map((r) => r.tag)).toEqual(['ok', 'ok', 'err', 'err']);
    expect(ctx.usage.secretsRevealed).toEqual(['token']);

    // Only a listing goes without a key: a null key is not the key "null".
    const kv = parseManifest({ name: 'a', world: 'kv-action', grants: { kv: ['counters'] } });
    const store = new MemoryKvStore();
    await store.set('counters', 'null', new Uint8Array([7]));
    const kvCtx: HostRunContext = { ...ctx, grants: kv.grants, limits: kv.limits, kv: store, calls: { count: 0 }, usage: { hostsContacted: [], secretsUsed: [], secretsRevealed: [], kvOps: [] } };
    for (const op of ['kv.get', 'kv.delete', 'kv.exists'] as const) expect((await handleHostCall(kvCtx, op, ['counters', null])).tag, op).toBe('err');
    expect(await store.get('counters', 'null')).toEqual(new Uint8Array([7]));
    expect((await handleHostCall(kvCtx, 'kv.list', ['counters', null])).tag).toBe('ok');
  });

  it('withholds a response that quotes a secret the run used earlier, or that comes encoded', async () => {
    let lastAcceptEncoding: string | undefined;
    const server = createServer((req, res) => {
      lastAcceptEncoding = req.headers['accept-encoding'];
      if (req.url === '/bin') res.end('stored: Bearer s3cr3t'); // a request bin read back later
      else if (req.url === '/gzip') res.setHeader('content-encoding', 'gzip').end(Buffer.from([0x1f, 0x8b]));
      else res.end('{"ok":true}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      // No secret header on this request, but the run has used the secret before.
      const { ctx } = context({ port, secretsInUse: () => [new TextEncoder().encode('s3cr3t')] });
      const plain = (where: string) => guestFetch(request(`http://127.0.0.1:${port}${where}`, { secretHeaders: [], headers: [['accept-encoding', 'gzip']] }), ctx);
      expect(await plain('/bin')).toMatchObject({ tag: 'err', val: { tag: 'denied', val: expect.stringContaining('quotes a secret') } });
      expect(await plain('/gzip')).toMatchObject({ tag: 'err', val: { tag: 'denied', val: expect.stringContaining('content-encoding') } });
      expect(lastAcceptEncoding).toBe('identity');
      expect(await plain('/')).toMatchObject({ tag: 'ok' });
      // A run that holds no secret gets what it asked for.
      const free = context({ port, secretsInUse: () => [] });
      expect(await guestFetch(request(`http://127.0.0.1:${port}/bin`, { secretHeaders: [], headers: [['accept-encoding', 'gzip']] }), free.ctx)).toMatchObject({ tag: 'ok' });
      expect(lastAcceptEncoding).toBe('gzip');
      // A secret that is not printable ASCII would leave in another form than the one searched.
      const wide = context({ port, secretValue: () => new TextEncoder().encode('p\u00e4ssw\u00f6rd') });
      expect(await guestFetch(request(`http://127.0.0.1:${port}/`), wide.ctx)).toMatchObject({ tag: 'err', val: { tag: 'invalid-request' } });
    } finally {
      server.close();
    }
  });

  it('name resolution ends at the run deadline', async () => {
    const { ctx, seen } = context({ resolver: () => new Promise(() => undefined), deadline: performance.now() + 200 });
    const start = performance.now();
    expect(await guestFetch(request('http://named.attex.test/'), ctx)).toMatchObject({ tag: 'err', val: { tag: 'timeout' } });
    expect(performance.now() - start).toBeLessThan(1000);
    expect(seen.secretReads).toBe(0);
  });

  it('nothing starts or goes on for a run that has ended', async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((socket) => void sockets.push(socket)); // accepts, never answers
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const over = new AbortController();
      over.abort();
      const before = context({ port, ended: over.signal });
      expect(await guestFetch(request(`http://127.0.0.1:${port}/`), before.ctx)).toMatchObject({ tag: 'err', val: { tag: 'timeout' } });
      expect(before.seen).toEqual({ secretReads: 0, contacts: [] });

      const ending = new AbortController();
      const during = context({ port, ended: ending.signal, deadline: performance.now() + 10_000 });
      const start = performance.now();
      const pending = guestFetch(request(`http://127.0.0.1:${port}/`), during.ctx);
      setTimeout(() => ending.abort(), 100);
      expect(await pending).toMatchObject({ tag: 'err', val: { tag: 'timeout' } });
      expect(performance.now() - start).toBeLessThan(2000);
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
    }
  });
});

describe('memory cap rewrite', () => {
  it('caps a module without a maximum and refuses an oversized minimum', async () => {
    const bytes = await parse('(module (memory (export "m") 1))');
    const capped = capModuleMemory(bytes, 4);
    const inst = new WebAssembly.Instance(new WebAssembly.Module(capped.bytes), {});
    const mem = inst.exports.m as WebAssembly.Memory;
    expect(mem.grow(3)).toBe(1);
    expect(() => mem.grow(1)).toThrow();
    const big = await parse('(module (memory 10))');
    expect(() => capModuleMemory(big, 4)).toThrow(expect.objectContaining({ code: 'sandbox.memory' }));
    expect(() => capModuleMemory(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 5, 200]), 4)).toThrow(expect.objectContaining({ code: 'sandbox.invalid-component' }));
  });

  it('caps tables too: a growable table stops at MAX_TABLE_ENTRIES, a larger one is refused', async () => {
    const growable = capModuleMemory(await parse('(module (table (export "t") 10 funcref))'), 4);
    const table = new WebAssembly.Instance(new WebAssembly.Module(growable.bytes), {}).exports.t as { grow(n: number): number; length: number };
    expect(table.grow(MAX_TABLE_ENTRIES - 10)).toBe(10);
    expect(() => table.grow(1)).toThrow();
    const bounded = capModuleMemory(await parse('(module (table (export "t") 5 100 funcref))'), 4);
    const small = new WebAssembly.Instance(new WebAssembly.Module(bounded.bytes), {}).exports.t as { grow(n: number): number };
    expect(small.grow(95)).toBe(5);
    expect(() => small.grow(1)).toThrow(); // its own smaller maximum is kept
    await expect(parse(`(module (table ${MAX_TABLE_ENTRIES + 1} funcref))`).then((b) => capModuleMemory(b, 4))).rejects.toMatchObject({ code: 'sandbox.memory', message: expect.stringMatching(/exceeds the cap of 100000/) });
  });
});

describe('memory import rewrite and leases', () => {
  const source = `(module
    (type (func (result i32)))
    (import "env" "f" (func (type 0)))
    (memory (export "m") 2 5)
    (data (i32.const 8) "hi")
    (func (export "peek") (result i32) (i32.load8_u (i32.const 100)))
    (func (export "poke") (i32.store8 (i32.const 100) (i32.const 7))))`;

  it('imports the defined memory with the same limits, keeping its index and data segments', async () => {
    const hoisted = importDefinedMemory(capModuleMemory(await parse(source), 8).bytes)!;
    expect(hoisted.memory).toEqual({ initial: 2, maximum: 5 });
    const module = new WebAssembly.Module(hoisted.bytes);
    expect(WebAssembly.Module.imports(module)).toEqual([
      { module: 'env', name: 'f', kind: 'function' },
      { module: MEMORY_IMPORT.module, name: MEMORY_IMPORT.name, kind: 'memory' },
    ]);
    const memory = new WebAssembly.Memory({ initial: 2, maximum: 5 });
    const inst = new WebAssembly.Instance(module, { env: { f: () => 0 }, [MEMORY_IMPORT.module]: { [MEMORY_IMPORT.name]: memory } });
    expect(inst.exports.m).toBe(memory);
    expect(new TextDecoder().decode(new Uint8Array(memory.buffer, 8, 2))).toBe('hi');
    // The cap holds for the imported memory too.
    expect(() => memory.grow(4)).toThrow();
    // A module without imports gets a new import section in the right place.
    const bare = importDefinedMemory(await parse('(module (memory 1 1) (func (export "f")))'))!;
    expect(WebAssembly.Module.imports(new WebAssembly.Module(bare.bytes))).toHaveLength(1);
  });

  it('leaves modules without exactly one capped memory alone and refuses repaired layouts', async () => {
    expect(importDefinedMemory(await parse('(module (func))'))).toBeUndefined();
    expect(importDefinedMemory(await parse('(module (memory 1))'))).toBeUndefined(); // no maximum: not capped
    // type, import, memory, import again: a second import section is invalid, not merged.
    const twice = Uint8Array.from([0, 97, 115, 109, 1, 0, 0, 0, 2, 1, 0, 5, 4, 1, 1, 1, 1, 2, 1, 0]);
    expect(() => importDefinedMemory(twice)).toThrow(expect.objectContaining({ code: 'sandbox.invalid-component' }));
    const late = Uint8Array.from([0, 97, 115, 109, 1, 0, 0, 0, 5, 4, 1, 1, 1, 1, 2, 1, 0]);
    expect(() => importDefinedMemory(late)).toThrow(expect.objectContaining({ code: 'sandbox.invalid-component' }));
  });

  it('hands a released memory back only zeroed and only if it never grew', async () => {
    const hoisted = importDefinedMemory(capModuleMemory(await parse(source), 8).bytes)!;
    const module = new WebAssembly.Module(hoisted.bytes);
    const leases = new MemoryLeases(new Map([[module, hoisted.memory]]));
    const held: Parameters<MemoryLeases['release']>[0] = [];
    const instance = () => new WebAssembly.Instance(module, leases.importsFor(module, { env: { f: () => 0 } }, held)).exports as Record<string, () => number> & { m: WebAssembly.Memory };
    const first = instance();
    first.poke!();
    expect(first.peek!()).toBe(7);
    const firstMemory = first.m;
    leases.release(held);
    const second = instance();
    expect(second.m).toBe(firstMemory); // reused ...
    expect(second.peek!()).toBe(0); // ... and zeroed
    second.m.grow(1);
    leases.release(held);
    const third = instance();
    expect(third.m).not.toBe(firstMemory); // grown: never handed out again
    expect(third.m.buffer.byteLength).toBe(2 * 65536);
  });
});

