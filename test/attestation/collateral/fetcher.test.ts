/**
 * The collateral fetcher against a loopback server that serves the vectors' files under AMD
 * KDS and Intel PCS paths, with PCS's URL-encoded issuer-chain headers.
 */
import { readFile, mkdtemp, readdir, rm, mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createCollateralFetcher,
  parseRetryAfter,
  pckCrlUrl,
  tdxTcbInfoUrl,
  vcekUrl,
  writeOfflineBundle,
  type CollateralFetcherOptions,
} from '../../../src/attestation/collateral/index.ts';
import { loadCollateralDir, loadTrustStore, makeEvidencePackage, verifyEvidence } from '../../../src/attestation/index.ts';
import { fromHex } from '../../../src/util/index.ts';
import { loadVectors, repoRoot } from '../evidence/vectors.ts';

const vectors = loadVectors();
const tdx = vectors.find((v) => v.name === 'tdx/v4-dcap-qvl')!;
const turin = vectors.find((v) => v.name === 'snp/turin-v5-oak')!;
const C = (name: string) => path.join(tdx.collateralDir!, name);

let app: FastifyInstance;
let base: string;
let tmp: string;
/** Requests seen, by path (without the query). */
const hits = new Map<string, number[]>();
/** Per-test behaviour switches. */
let mode: { tcb?: 'rate-limit-once' | 'rate-limit-long' | 'html' | 'no-header'; qe?: 'fail' } = {};

function seen(p: string): number {
  return hits.get(p)?.length ?? 0;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'attex-fetch-'));
  const file = (name: string) => readFile(C(name));
  const chainHeader = async (name: string) => encodeURIComponent(await readFile(C(name), 'utf8'));
  app = Fastify({ forceCloseConnections: true });
  app.addHook('onRequest', async (req) => {
    const p = req.url.split('?')[0]!;
    hits.set(p, [...(hits.get(p) ?? []), Date.now()]);
  });
  app.get('/vlek/v1/:product/cert_chain', async (req, reply) => {
    const p = (req.params as { product: string }).product.toLowerCase();
    const pem = (n: string) => readFile(path.join(repoRoot, `attestation/roots/${n}_${p}.pem`), 'utf8');
    return reply.type('application/x-pem-file').send((await pem('asvk')) + (await pem('ark')));
  });
  app.get('/vcek/v1/:product/:hwid', async (req, reply) => {
    const { product, hwid } = req.params as { product: string; hwid: string };
    const q = req.query as Record<string, string>;
    if (hwid === 'cert_chain') {
      const ask = await readFile(path.join(repoRoot, `attestation/roots/ask_${product.toLowerCase()}.pem`), 'utf8');
      const ark = await readFile(path.join(repoRoot, `attestation/roots/ark_${product.toLowerCase()}.pem`), 'utf8');
      return reply.type('application/x-pem-file').send(ask + ark);
    }
    const want = { blSPL: '1', teeSPL: '0', snpSPL: '2', ucodeSPL: '71', fmcSPL: '0' };
    if (product !== 'Turin' || hwid !== '3b42092f69c656d3' || JSON.stringify(q) !== JSON.stringify(want)) return reply.code(404).send('not found');
    return reply.type('application/x-x509-ca-cert').send(await readFile(turin.certFile!));
  });
  app.get('/tdx/certification/v4/tcb', async (req, reply) => {
    if ((req.query as { fmspc?: string }).fmspc !== 'b0c06f000000') return reply.code(404).send();
    const n = seen('/tdx/certification/v4/tcb');
    if (mode.tcb === 'rate-limit-once' && n === 1) return reply.code(429).header('Retry-After', '1').send();
    if (mode.tcb === 'rate-limit-long') return reply.code(429).header('Retry-After', '3600').send();
    if (mode.tcb === 'html') return reply.type('text/html').send('<html>maintenance</html>');
    if (mode.tcb !== 'no-header') reply.header('TCB-Info-Issuer-Chain', await chainHeader('tcb-info-issuer-chain.pem'));
    return reply.type('application/json').send(await file('tcb-info.json'));
  });
  app.get('/tdx/certification/v4/qe/identity', async (_req, reply) => {
    if (mode.qe === 'fail') return reply.code(503).send();
    reply.header('SGX-Enclave-Identity-Issuer-Chain', await chainHeader('qe-identity-issuer-chain.pem'));
    return reply.type('application/json').send(await file('qe-identity.json'));
  });
  app.get('/sgx/certification/v4/pckcrl', async (req, reply) => {
    const q = req.query as Record<string, string>;
    if (q['ca'] !== 'platform' || q['encoding'] !== 'der') return reply.code(400).send();
    reply.header('SGX-PCK-CRL-Issuer-Chain', await chainHeader('pck-crl-issuer-chain.pem'));
    return reply.type('application/pkix-crl').send(await file('pck-crl.der'));
  });
  app.get('/IntelSGXRootCA.der', async (_req, reply) => reply.type('application/pkix-crl').send(await file('root-ca-crl.der')));
  app.get('/big', async (_req, reply) => reply.send(Buffer.alloc(4096, 0x30)));
  app.get('/big-chunked', async (_req, reply) => {
    reply.raw.writeHead(200, { 'content-type': 'application/octet-stream' });
    for (let i = 0; i < 8; i++) reply.raw.write(Buffer.alloc(1024, 0x30));
    reply.raw.end();
    return reply;
  });
  app.get('/hang', () => new Promise(() => undefined));
  base = await app.listen({ port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  await app.close();
  await rm(tmp, { recursive: true, force: true });
});

beforeEach(() => {
  hits.clear();
  mode = {};
});

function fetcher(extra: CollateralFetcherOptions = {}) {
  return createCollateralFetcher({ amdKdsUrl: base, intelPcsUrl: base, intelCertsUrl: base, backoffBaseMs: 10, timeoutMs: 5_000, ...extra });
}

describe('collateral URLs', () => {
  it('builds the vendors\' real paths', () => {
    const chip = new Uint8Array(64).fill(0xab);
    expect(vcekUrl('https://kdsintf.amd.com', 'Milan', chip, { bl: 3, tee: 0, snp: 8, ucode: 115 })).toBe(
      `https://kdsintf.amd.com/vcek/v1/Milan/${'ab'.repeat(64)}?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115`,
    );
    const turinChip = new Uint8Array(64);
    turinChip.set(fromHex('3b42092f69c656d3'));
    expect(vcekUrl('https://kdsintf.amd.com/', 'Turin', turinChip, { fmc: 0, bl: 1, tee: 0, snp: 2, ucode: 71 })).toBe(
      'https://kdsintf.amd.com/vcek/v1/Turin/3b42092f69c656d3?blSPL=1&teeSPL=0&snpSPL=2&ucodeSPL=71&fmcSPL=0',
    );
    expect(tdxTcbInfoUrl('https://api.trustedservices.intel.com', 'B0C06F000000')).toBe('https://api.trustedservices.intel.com/tdx/certification/v4/tcb?fmspc=b0c06f000000');
    expect(pckCrlUrl('https://api.trustedservices.intel.com', 'processor')).toBe('https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=processor&encoding=der');
  });

  it('refuses parameters that would build a wrong or injected URL', () => {
    const chip = new Uint8Array(64);
    const tcb = { bl: 1, tee: 0, snp: 2, ucode: 71 };
    expect(() => vcekUrl('https://k', 'Turin', chip, tcb)).toThrow(/fmcSPL/);
    expect(() => vcekUrl('https://k', 'Milan', chip, { ...tcb, fmc: 1 })).toThrow(/Turin only/);
    expect(() => vcekUrl('https://k', 'Milan', chip.subarray(0, 8), tcb)).toThrow(/64 bytes/);
    expect(() => vcekUrl('https://k', 'Turin', chip.fill(1), { ...tcb, fmc: 0 })).toThrow(/zero after/);
    expect(() => vcekUrl('https://k', 'Genoa', new Uint8Array(64), { ...tcb, ucode: 256 })).toThrow(/ucodeSPL/);
    expect(() => vcekUrl('file:///etc', 'Genoa', new Uint8Array(64), tcb)).toThrow(/scheme/);
    expect(() => tdxTcbInfoUrl('https://p', 'b0c06f&x=1')).toThrow(/fmspc/);
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('7', 0)).toBe(7000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('Wed, 21 Oct 2015 07:27:50 GMT'))).toBe(10_000);
    expect(parseRetryAfter('soon', 0)).toBeNull();
    expect(parseRetryAfter(undefined, 0)).toBeNull();
  });
});

describe('createCollateralFetcher', () => {
  it('fetches a Turin VCEK by hwID and TCB, and it verifies the report it belongs to', async () => {
    const chip = turin.evidence.subarray(0x1a0, 0x1e0);
    const vcek = await fetcher().fetchVcek('Turin', chip, { fmc: 0, bl: 1, tee: 0, snp: 2, ucode: 71 });
    expect(Buffer.from(vcek).equals(Buffer.from(turin.cert!))).toBe(true);
    const trust = await loadTrustStore({ allowSimulated: false });
    const result = await verifyEvidence(makeEvidencePackage({ kind: 'snp', evidence: turin.evidence, certs: [vcek] }), { trust, now: new Date(turin.expected.now) });
    expect(result.outcome).toBe('accept');
    await expect(fetcher().fetchVcek('Turin', chip, { fmc: 0, bl: 1, tee: 0, snp: 3, ucode: 71 })).rejects.toMatchObject({ code: 'collateral.not-found' });
  });

  it('fetches the AMD VCEK and VLEK chains as PEM, intermediate then ARK', async () => {
    const chain = await fetcher().fetchAmdCertChain('Genoa');
    expect(chain).toBe((await readFile(path.join(repoRoot, 'attestation/roots/ask_genoa.pem'), 'utf8')) + (await readFile(path.join(repoRoot, 'attestation/roots/ark_genoa.pem'), 'utf8')));
    const vlek = await fetcher().fetchAmdVlekCertChain('Milan');
    expect(vlek.startsWith(await readFile(path.join(repoRoot, 'attestation/roots/asvk_milan.pem'), 'utf8'))).toBe(true);
    expect(seen('/vcek/v1/Genoa/cert_chain') + seen('/vlek/v1/Milan/cert_chain')).toBe(2);
  });

  it('fetches TDX collateral with URL-decoded issuer chains; the offline bundle verifies the quote', async () => {
    const collateral = await fetcher().fetchTdxCollateral({ fmspc: 'B0C06F000000', ca: 'platform' });
    expect(collateral.tcbInfoIssuerChain).toBe(await readFile(C('tcb-info-issuer-chain.pem'), 'utf8'));
    expect(collateral.pckCrlIssuerChain).toBe(await readFile(C('pck-crl-issuer-chain.pem'), 'utf8'));
    expect(Buffer.from(collateral.tcbInfo!).equals(await readFile(C('tcb-info.json')))).toBe(true);

    const dir = path.join(tmp, 'bundle');
    await writeOfflineBundle(dir, collateral);
    expect((await readdir(dir)).sort()).toEqual((await readdir(tdx.collateralDir!)).sort());
    for (const name of await readdir(dir)) expect((await readFile(path.join(dir, name))).equals(await readFile(C(name))), name).toBe(true);
    expect((await readdir(tmp)).filter((n) => n.includes('.tmp-'))).toEqual([]);

    const trust = await loadTrustStore({ allowSimulated: false });
    const pkg = makeEvidencePackage({ kind: 'tdx', evidence: tdx.evidence, collateral: await loadCollateralDir(dir) });
    expect(await verifyEvidence(pkg, { trust, now: new Date(tdx.expected.now) })).toMatchObject({ outcome: 'accept', tcb_status: 'UpToDate' });

    await expect(writeOfflineBundle(dir, collateral)).rejects.toMatchObject({ code: 'collateral.exists' });
    await expect(writeOfflineBundle(path.join(tmp, 'empty'), {})).rejects.toMatchObject({ code: 'collateral.empty' });
  });

  it('waits as Retry-After says on 429, then succeeds', async () => {
    mode.tcb = 'rate-limit-once';
    const tcb = await fetcher().fetchTdxTcbInfo('b0c06f000000');
    expect(tcb.issuerChain).toContain('BEGIN CERTIFICATE');
    const times = hits.get('/tdx/certification/v4/tcb')!;
    expect(times).toHaveLength(2);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(900);
  });

  it('gives up at once when Retry-After exceeds the cap', async () => {
    mode.tcb = 'rate-limit-long';
    await expect(fetcher({ maxRetryDelayMs: 5_000 }).fetchTdxTcbInfo('b0c06f000000')).rejects.toMatchObject({ code: 'collateral.rate-limited' });
    expect(seen('/tdx/certification/v4/tcb')).toBe(1);
  });

  it('stops after maxAttempts on repeated server errors', async () => {
    mode.qe = 'fail';
    await expect(fetcher({ maxAttempts: 3 }).fetchTdxQeIdentity()).rejects.toMatchObject({ code: 'collateral.unavailable' });
    expect(seen('/tdx/certification/v4/qe/identity')).toBe(3);
  });

  it('refuses bodies that are not PCS collateral and responses without the issuer chain', async () => {
    mode.tcb = 'html';
    await expect(fetcher().fetchTdxTcbInfo('b0c06f000000')).rejects.toMatchObject({ code: 'collateral.malformed' });
    mode.tcb = 'no-header';
    await expect(fetcher().fetchTdxTcbInfo('b0c06f000000')).rejects.toMatchObject({ code: 'collateral.malformed', message: /TCB-Info-Issuer-Chain/ });
  });

  it('caps response size and time', async () => {
    const { httpGet } = await import('../../../src/attestation/collateral/index.ts');
    await expect(httpGet(`${base}/big`, { maxBodyBytes: 1024 })).rejects.toMatchObject({ code: 'collateral.too-large' });
    await expect(httpGet(`${base}/big-chunked`, { maxBodyBytes: 2048 })).rejects.toMatchObject({ code: 'collateral.too-large' });
    await expect(httpGet(`${base}/hang`, { timeoutMs: 200, maxAttempts: 2, backoffBaseMs: 10 })).rejects.toMatchObject({ code: 'collateral.unavailable' });
    expect(seen('/hang')).toBe(2);
  });

  it('serves a fresh cache hit without any request, and refetches once stale', async () => {
    const cacheDir = path.join(tmp, 'cache');
    let clock = Date.parse('2025-07-04T00:00:00Z');
    const opts = { cacheDir, now: () => clock, collateralMaxAgeMs: 3600_000 };
    const first = await fetcher(opts).fetchTdxTcbInfo('b0c06f000000');
    expect(seen('/tdx/certification/v4/tcb')).toBe(1);
    const again = await fetcher(opts).fetchTdxTcbInfo('b0c06f000000');
    expect(seen('/tdx/certification/v4/tcb')).toBe(1);
    expect(again).toEqual(first);
    clock += 2 * 3600_000;
    await fetcher(opts).fetchTdxTcbInfo('b0c06f000000');
    expect(seen('/tdx/certification/v4/tcb')).toBe(2);
    expect((await readdir(cacheDir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('treats a damaged cache entry as a miss', async () => {
    const cacheDir = path.join(tmp, 'cache-damaged');
    await mkdir(cacheDir);
    const f = fetcher({ cacheDir });
    await f.fetchRootCaCrl();
    for (const name of await readdir(cacheDir)) await writeFile(path.join(cacheDir, name), '{"v":1,"url":');
    const crl = await f.fetchRootCaCrl();
    expect(Buffer.from(crl).equals(await readFile(C('root-ca-crl.der')))).toBe(true);
    expect(seen('/IntelSGXRootCA.der')).toBe(2);
  });
});
