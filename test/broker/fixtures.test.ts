/**
 * Wire shapes against Trustee's: the real client talks to the real broker through a recording
 * loopback proxy, and every request and response body is compared, member by member, with the
 * fixtures written from Trustee's protocol description and kbs-types.
 */
import { readFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simProvider } from '../../src/attestation/providers/index.ts';
import { attestAndFetch } from '../../src/broker/client/index.ts';
import { toHex } from '../../src/util/index.ts';
import { call, openSim, startBroker, tempDir, type TestBroker } from './harness.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const fixture = async (name: string) => JSON.parse(await readFile(path.join(here, 'fixtures', name), 'utf8')) as Record<string, unknown>;

interface Exchange {
  method: string;
  url: string;
  requestHeaders: IncomingHttpHeaders;
  requestBody: unknown;
  status: number;
  responseHeaders: IncomingHttpHeaders;
  responseBody: unknown;
}

/** A loopback proxy that records each exchange and forwards it unchanged. */
async function recordingProxy(target: string): Promise<{ url: string; exchanges: Exchange[]; server: Server }> {
  const exchanges: Exchange[] = [];
  const t = new URL(target);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const fwd = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
        const upChunks: Buffer[] = [];
        up.on('data', (c: Buffer) => upChunks.push(c));
        up.on('end', () => {
          const upBody = Buffer.concat(upChunks);
          exchanges.push({
            method: req.method ?? '',
            url: req.url ?? '',
            requestHeaders: req.headers,
            requestBody: body.length ? JSON.parse(body.toString()) : null,
            status: up.statusCode ?? 0,
            responseHeaders: up.headers,
            responseBody: upBody.length ? JSON.parse(upBody.toString()) : null,
          });
          res.writeHead(up.statusCode ?? 502, up.headers);
          res.end(upBody);
        });
      });
      fwd.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, exchanges, server };
}

/** JSON type of every member, recursively (arrays by their first element). */
function shape(v: unknown): unknown {
  if (v === null) return 'null';
  if (Array.isArray(v)) return [v.length ? shape(v[0]) : 'empty'];
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v as object).map(([k, x]) => [k, shape(x)]).sort());
  return typeof v;
}

let tmp: Awaited<ReturnType<typeof tempDir>>;
let b: TestBroker;
let proxy: Awaited<ReturnType<typeof recordingProxy>>;

beforeAll(async () => {
  tmp = await tempDir('attex-broker-fixtures-');
  const sim = await openSim(tmp.dir);
  b = await startBroker({
    sim,
    dir: tmp.dir,
    resourcePolicy: { version: 1, id: 'fx', rules: [{ resources: ['default/key/*'], tees: ['sim-snp'], measurements: [toHex(sim.measurement)], minStatus: 'warning', allowSimulated: true }] },
  });
  await b.broker.store.put('default/key/one', new TextEncoder().encode('fixture-secret'));
  proxy = await recordingProxy(b.url);
  const session = await attestAndFetch({ brokerUrl: proxy.url, provider: simProvider({ stateDir: path.join(tmp.dir, 'sim') }), resources: ['default/key/one'], renew: false });
  session.close();
});

afterAll(async () => {
  proxy?.server.close();
  await b?.close();
  await tmp?.cleanup();
});

const exchange = (p: string) => proxy.exchanges.find((e) => e.url.startsWith(p))!;

describe('KBS wire shapes match Trustee', () => {
  it('Request: exactly version, tee, extra-params', async () => {
    const e = exchange('/kbs/v0/auth');
    expect(e.method).toBe('POST');
    expect(e.requestHeaders['content-type']).toContain('application/json');
    expect(shape(e.requestBody)).toEqual(shape(await fixture('request.json')));
    expect(e.requestBody).toMatchObject({ version: '0.4.0' });
  });

  it('Challenge: exactly nonce (32 bytes, base64) and extra-params, with the kbs-session-id cookie', async () => {
    const e = exchange('/kbs/v0/auth');
    expect(e.status).toBe(200);
    expect(shape(e.responseBody)).toEqual(shape(await fixture('challenge.json')));
    const nonce = (e.responseBody as { nonce: string }).nonce;
    expect(Buffer.from(nonce, 'base64')).toHaveLength(32);
    expect(Buffer.from(nonce, 'base64').toString('base64')).toBe(nonce);
    const cookie = String(e.responseHeaders['set-cookie']);
    expect(cookie).toMatch(/^kbs-session-id=[A-Za-z0-9_-]+; /);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toMatch(/Max-Age=\d+/);
  });

  it('Attestation: runtime-data {nonce, tee-pubkey (EC TeePubKey)} and tee-evidence, cookie sent back', async () => {
    const e = exchange('/kbs/v0/attest');
    const fx = await fixture('attestation-ec.json');
    const body = e.requestBody as Record<string, Record<string, unknown>>;
    expect(Object.keys(body).sort()).toEqual(Object.keys(fx).sort());
    expect(shape(body['runtime-data'])).toEqual(shape(fx['runtime-data']));
    expect(typeof body['tee-evidence']).toBe('object');
    expect(String(e.requestHeaders['cookie'])).toMatch(/^kbs-session-id=/);
    expect(body['runtime-data']!['nonce']).toBe((exchange('/kbs/v0/auth').responseBody as { nonce: string }).nonce);
  });

  it('attestation results token: {"token": <JWT>}', async () => {
    const e = exchange('/kbs/v0/attest');
    expect(e.status).toBe(200);
    expect(shape(e.responseBody)).toEqual(shape(await fixture('token-response.json')));
    expect((e.responseBody as { token: string }).token.split('.')).toHaveLength(3);
  });

  it('Response: the flattened JWE members of kbs-types Response (no aad), protected header {alg, enc, ...}', async () => {
    const e = exchange('/kbs/v0/resource/');
    expect(e.method).toBe('GET');
    expect(e.url).toBe('/kbs/v0/resource/default/key/one');
    expect(shape(e.responseBody)).toEqual(shape(await fixture('response.json')));
    for (const v of Object.values(e.responseBody as Record<string, string>)) expect(v).toMatch(/^[A-Za-z0-9_-]+$/);
    const header = decodeProtectedHeader(e.responseBody as { protected: string });
    expect(header).toMatchObject({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' });
    const fxHeader = decodeProtectedHeader((await fixture('response.json')) as { protected: string });
    for (const k of Object.keys(fxHeader)) expect(header).toHaveProperty(k);
  });

  it('ErrorInformation: type under Trustee\'s prefix and a string detail', async () => {
    const fx = await fixture('error-information.json');
    const res = await call(`${b.url}/kbs/v0/resource/other/key/one`, { headers: { authorization: `Bearer ${(exchange('/kbs/v0/attest').responseBody as { token: string }).token}` } });
    expect(res.status).toBe(403);
    for (const k of Object.keys(fx)) expect(typeof res.json[k]).toBe(typeof fx[k]);
    expect(res.json['type']).toBe(fx['type']);
  });
});
