/**
 * The broker end to end over loopback HTTP: a simulated-SNP executor attests with the real
 * client, receives exactly what policy allows, and every bad input is refused with the right
 * problem, releases nothing, and lands in the signed audit log.
 */
import 'reflect-metadata';
import { generateKeyPairSync } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { X509Certificate } from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bindingMatches, reportDataFor } from '../../src/attestation/binding/index.ts';
import { loadTrustStore, makeEvidencePackage, verifyEvidence } from '../../src/attestation/evidence/index.ts';
import { simProvider } from '../../src/attestation/providers/index.ts';
import type { SimulatedTee } from '../../src/attestation/sim/index.ts';
import { buildSnpReport } from '../../src/attestation/sim/snp-report.ts';
import { SIM_TCB } from '../../src/attestation/sim/pki.ts';
import { loadOrCreateState } from '../../src/attestation/sim/store.ts';
import { attestAndFetch } from '../../src/broker/client/index.ts';
import { decryptFromBroker } from '../../src/broker/jwe.ts';
import { TRUSTEE_ERROR_PREFIX } from '../../src/broker/problems.ts';
import { toHex } from '../../src/util/index.ts';
import { rawConnection } from '../server/helpers.ts';
import { attestSim, attestationFor, auth, call, openSim, startBroker, teeKey, tempDir, type TestBroker } from './harness.ts';

const SECRET_DB = 'db-password-3f9a1c77e2';
const SECRET_API = 'api-token-a81b2c9d4e';
const SECRET_HW = 'hardware-only-5d6e7f80';

let tmp: Awaited<ReturnType<typeof tempDir>>;
let sim: SimulatedTee;
let b: TestBroker;
let measurement: string;

function resourcePolicy(m: string) {
  return {
    version: 1,
    id: 'server-test',
    rules: [
      { resources: ['app/key/*'], tees: ['sim-snp', 'snp'], measurements: [m], minStatus: 'warning', allowSimulated: true },
      { resources: ['app/hw/*'], tees: ['snp'], measurements: [m], minStatus: 'affirming', allowSimulated: false },
      { resources: ['app/other-image/*'], tees: ['sim-snp'], measurements: ['00'.repeat(48)], minStatus: 'warning', allowSimulated: true },
      { resources: ['app/affirmed/*'], tees: ['sim-snp'], measurements: [m], minStatus: 'affirming', allowSimulated: true },
    ],
  };
}

beforeAll(async () => {
  tmp = await tempDir('attex-broker-http-');
  sim = await openSim(tmp.dir);
  measurement = toHex(sim.measurement);
  b = await startBroker({ sim, dir: tmp.dir, resourcePolicy: resourcePolicy(measurement) });
  const enc = (s: string) => new TextEncoder().encode(s);
  await b.broker.store.put('app/key/db', enc(SECRET_DB));
  await b.broker.store.put('app/key/api', enc(SECRET_API));
  await b.broker.store.put('app/hw/db', enc(SECRET_HW));
  await b.broker.store.put('app/other-image/db', enc(SECRET_HW));
});

afterAll(async () => {
  await b?.close();
  await tmp?.cleanup();
});

/** The audit entries appended since `from`. */
async function auditSince(from: number) {
  return (await b.auditEntries()).slice(from);
}

/** Assert a problem+json refusal with Trustee's ErrorInformation members and our code. */
function expectProblem(res: { status: number; contentType: string; json: Record<string, unknown> }, status: number, type: string, code: string | RegExp) {
  expect(res.status).toBe(status);
  expect(res.contentType).toContain('application/problem+json');
  expect(res.json['type']).toBe(type.includes(':') ? type : `${TRUSTEE_ERROR_PREFIX}${type}`);
  expect(typeof res.json['detail']).toBe('string');
  expect(res.json['status']).toBe(status);
  if (typeof code === 'string') expect(res.json['code']).toBe(code);
  else expect(res.json['code']).toMatch(code);
  expect(JSON.stringify(res.json)).not.toMatch(/\bat .*\.ts:\d+|Error:/);
  expect(res.json).not.toHaveProperty('ciphertext');
}

async function expectDeniedInAudit(from: number, code: string, extra: Record<string, unknown> = {}) {
  const entries = await auditSince(from);
  expect(entries.some((e) => e.decision === 'release')).toBe(false);
  expect(entries.filter((e) => e.decision === 'deny').map((e) => e.reason)).toContain(code);
  const entry = entries.find((e) => e.reason === code)!;
  expect(entry).toMatchObject(extra);
  return entry;
}

describe('attested release', () => {
  it('a sim-TEE executor attests, receives exactly what policy allows, and decrypts it', async () => {
    const receiptKey = Buffer.alloc(32, 9).toString('base64');
    const before = b.broker.ledger.size;
    const session = await attestAndFetch({
      brokerUrl: b.url,
      provider: simProvider({ stateDir: path.join(tmp.dir, 'sim') }),
      resources: ['app/key/db', 'app/key/api'],
      secretNames: { DB_PASSWORD: 'app/key/db', API_TOKEN: 'app/key/api' },
      runtimeDataExtra: { 'attex-receipt-key': receiptKey },
      renew: false,
    });
    try {
      expect(session.ready).toBe(true);
      expect(new TextDecoder().decode(session.secrets.get('DB_PASSWORD'))).toBe(SECRET_DB);
      expect(new TextDecoder().decode(session.secrets.get('API_TOKEN'))).toBe(SECRET_API);
      expect(session.secrets.has('app/key/db')).toBe(false);
      expect(session.secrets.get('HW')).toBeUndefined();
      expect(session.runtimeData['attex-receipt-key']).toBe(receiptKey);
      expect(session.evidence.kind).toBe('snp');
      // The returned evidence binds the returned runtime data (what the executor records).
      const trust = await loadTrustStore({ extraAmd: sim.amdRoots, extraIntel: sim.intelRoots, allowSimulated: true });
      const verified = await verifyEvidence(session.evidence, { trust, now: new Date() });
      expect(bindingMatches(verified, session.runtimeData)).toBe(true);
      const claims = JSON.parse(Buffer.from(session.token.split('.')[1]!, 'base64url').toString()) as Record<string, any>;
      expect(claims['eat_profile']).toBe('tag:github.com,2023:veraison/ear');
      const ev = claims['submods']['snp']['ear.veraison.annotated-evidence'];
      expect(ev).toMatchObject({ tee: 'sim-snp', kind: 'snp', simulated: true, measurement, 'tee-pubkey': session.runtimeData['tee-pubkey'] });
      expect(claims['submods']['snp']['ear.status']).toBe('warning');

      const entries = await auditSince(before);
      expect(entries.map((e) => [e.event, e.decision, e.resource ?? null])).toEqual([
        ['attest', 'token-issued', null],
        ['resource', 'release', 'app/key/db'],
        ['resource', 'release', 'app/key/api'],
      ]);
      expect(entries[1]).toMatchObject({ reason: 'ok', measurement, simulated: true, evidenceDigest: ev['evidence-digest'], appraisal: { status: 'warning', tee: 'sim-snp' } });
    } finally {
      session.close();
    }
    expect(session.ready).toBe(false);
    expect(session.secrets.get('DB_PASSWORD')).toBeUndefined();
  });

  it('the same session is refused what policy does not allow (hardware-only, other image)', async () => {
    const { cookie, token, key } = await attestSim(b.url, sim);
    expect(token).toBeTypeOf('string');
    const before = b.broker.ledger.size;
    expectProblem(await call(`${b.url}/kbs/v0/resource/app/hw/db`, { headers: { cookie } }), 403, 'PolicyDeny', 'broker.policy.simulated');
    expectProblem(await call(`${b.url}/kbs/v0/resource/app/other-image/db`, { headers: { cookie } }), 403, 'PolicyDeny', 'broker.policy.measurement');
    expectProblem(await call(`${b.url}/kbs/v0/resource/nothing/here/x`, { headers: { cookie } }), 403, 'PolicyDeny', 'broker.policy.no-rule');
    await expectDeniedInAudit(before, 'broker.policy.simulated', { resource: 'app/hw/db', status: 403 });
    await expectDeniedInAudit(before, 'broker.policy.measurement', { resource: 'app/other-image/db' });

    // The bearer token alone works too, and decrypts only with the attested TEE key.
    const res = await call(`${b.url}/kbs/v0/resource/app/key/db`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(Object.keys(res.json).sort()).toEqual(['ciphertext', 'encrypted_key', 'iv', 'protected', 'tag']);
    expect(new TextDecoder().decode(await decryptFromBroker(res.json, key.privateKey))).toBe(SECRET_DB);
    await expect(decryptFromBroker(res.json, (await teeKey()).privateKey)).rejects.toMatchObject({ code: 'broker.jwe' });
  });

  it('tokens verify with the JWKS the broker publishes', async () => {
    const { createLocalJWKSet, jwtVerify } = await import('jose');
    const { token } = await attestSim(b.url, sim);
    const set = await call(`${b.url}/.well-known/attex-broker-jwks.json`);
    expect(set.status).toBe(200);
    expect(JSON.stringify(set.json)).not.toContain('"d"');
    const { payload, protectedHeader } = await jwtVerify(token!, createLocalJWKSet(set.json as never), { issuer: 'attex-broker' });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload['eat_profile']).toBe('tag:github.com,2023:veraison/ear');
    expect(payload['ear.verifier-id']).toMatchObject({ developer: 'attex' });
  });

  it('an RSA TEE key gets an RSA-OAEP-256 JWE', async () => {
    const { generateKeyPair, exportJWK } = await import('jose');
    const { publicKey, privateKey } = await generateKeyPair('RSA-OAEP-256', { modulusLength: 2048 });
    const jwk = await exportJWK(publicKey);
    const { cookie, nonce } = await auth(b.url);
    const body = await attestationFor(sim, { nonce, 'tee-pubkey': { kty: 'RSA', alg: 'RSA-OAEP-256', n: jwk.n!, e: jwk.e! } });
    expect((await call(`${b.url}/kbs/v0/attest`, { body, headers: { cookie } })).status).toBe(200);
    const res = await call(`${b.url}/kbs/v0/resource/app/key/api`, { headers: { cookie } });
    expect(res.status).toBe(200);
    expect(JSON.parse(Buffer.from(String(res.json['protected']), 'base64url').toString())).toEqual({ alg: 'RSA-OAEP-256', enc: 'A256GCM' });
    expect(new TextDecoder().decode(await decryptFromBroker(res.json, privateKey))).toBe(SECRET_API);
  });

  it('tdx and az-snp-vtpm sessions attest with the matching simulated evidence', async () => {
    for (const [tee, make, name] of [
      ['tdx', (rd: Uint8Array) => sim.tdxEvidence(rd), 'sim-tdx'],
      ['az-snp-vtpm', (rd: Uint8Array) => sim.azureHclEvidence(rd), 'sim-snp'],
    ] as const) {
      const { cookie, nonce } = await auth(b.url, tee);
      const key = await teeKey();
      const runtimeData = { nonce, 'tee-pubkey': key.pub };
      const res = await call(`${b.url}/kbs/v0/attest`, { body: { 'runtime-data': runtimeData, 'tee-evidence': await make(reportDataFor(runtimeData)) }, headers: { cookie } });
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      const claims = JSON.parse(Buffer.from(String(res.json['token']).split('.')[1]!, 'base64url').toString());
      expect(Object.keys(claims.submods)).toEqual([tee]);
      expect(claims.submods[tee]['ear.veraison.annotated-evidence'].tee).toBe(name);
    }
  });

  it('an unknown resource under an allowed path is 404 and releases nothing', async () => {
    const { cookie } = await attestSim(b.url, sim);
    const before = b.broker.ledger.size;
    expectProblem(await call(`${b.url}/kbs/v0/resource/app/key/missing`, { headers: { cookie } }), 404, 'urn:attex:broker:problem:ResourceNotFound', 'broker.resource-unknown');
    expectProblem(await call(`${b.url}/kbs/v0/resource/.hidden/key/x`, { headers: { cookie } }), 404, 'InvalidRequestPath', 'broker.resource-path');
    expectProblem(await call(`${b.url}/kbs/v0/resource/a/b/c/d`, { headers: { cookie } }), 404, 'urn:attex:broker:problem:NotFound', 'broker.not-found');
    await expectDeniedInAudit(before, 'broker.resource-unknown', { resource: 'app/key/missing', status: 404 });
    await expectDeniedInAudit(before, 'broker.resource-path');
  });
});

describe('attestation refusals', () => {
  it('report_data that does not bind the presented key', async () => {
    const { cookie, nonce } = await auth(b.url);
    const presented = await teeKey();
    const bound = await teeKey();
    const body = await attestationFor(sim, { nonce, 'tee-pubkey': presented.pub }, { nonce, 'tee-pubkey': bound.pub });
    const before = b.broker.ledger.size;
    const res = await call(`${b.url}/kbs/v0/attest`, { body, headers: { cookie } });
    expectProblem(res, 401, 'AttestationFailed', 'broker.binding-mismatch');
    expect(res.setCookie).toBeUndefined();
    const entry = await expectDeniedInAudit(before, 'broker.binding-mismatch', { event: 'attest', simulated: true, measurement });
    expect(entry.evidenceDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    // The session is burnt: nothing is released on it.
    expectProblem(await call(`${b.url}/kbs/v0/resource/app/key/db`, { headers: { cookie } }), 401, 'UnAuthenticatedCookie', 'broker.session-not-attested');
  });

  it('a replayed nonce: the same Attestation twice, and an old Attestation on a new session', async () => {
    const first = await attestSim(b.url, sim);
    expect(first.res.status).toBe(200);
    const before = b.broker.ledger.size;
    expectProblem(await call(`${b.url}/kbs/v0/attest`, { body: first.body, headers: { cookie: first.cookie } }), 401, 'AttestationFailed', 'broker.nonce-replayed');
    const fresh = await auth(b.url);
    expectProblem(await call(`${b.url}/kbs/v0/attest`, { body: first.body, headers: { cookie: fresh.cookie } }), 401, 'AttestationFailed', 'broker.nonce-mismatch');
    await expectDeniedInAudit(before, 'broker.nonce-replayed');
    await expectDeniedInAudit(before, 'broker.nonce-mismatch');
  });

  it('concurrent attestations on one session: exactly one token', async () => {
    const { cookie, nonce } = await auth(b.url);
    const key = await teeKey();
    const body = await attestationFor(sim, { nonce, 'tee-pubkey': key.pub });
    const results = await Promise.all(Array.from({ length: 6 }, () => call(`${b.url}/kbs/v0/attest`, { body, headers: { cookie } })));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 200)) expectProblem(r, 401, 'AttestationFailed', 'broker.nonce-replayed');
  });

  it('a debug-enabled guest is refused by appraisal', async () => {
    const state = await loadOrCreateState(path.join(tmp.dir, 'sim'));
    const { cookie, nonce } = await auth(b.url);
    const key = await teeKey();
    const runtimeData = { nonce, 'tee-pubkey': key.pub };
    const report = buildSnpReport({
      version: 3, product: 'Milan', reportData: reportDataFor(runtimeData), measurement: sim.measurement,
      chipId: state.chipId, tcb: SIM_TCB.Milan, vcekKey: state.keys['vcek_milan']!, policy: 0x30000n | (1n << 19n),
    });
    const vcek = new Uint8Array(new X509Certificate(state.certs['vcek_milan']!).rawData);
    const evidence = makeEvidencePackage({ kind: 'snp', evidence: report, certs: [vcek] });
    const before = b.broker.ledger.size;
    const res = await call(`${b.url}/kbs/v0/attest`, { body: { 'runtime-data': runtimeData, 'tee-evidence': evidence }, headers: { cookie } });
    expectProblem(res, 401, 'AttestationFailed', /debug/);
    const entries = await auditSince(before);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ decision: 'deny', event: 'attest', appraisal: { status: 'contraindicated' } });
  });

  it('evidence of a kind the session did not announce', async () => {
    const { cookie, nonce } = await auth(b.url, 'tdx');
    const key = await teeKey();
    const body = await attestationFor(sim, { nonce, 'tee-pubkey': key.pub });
    const before = b.broker.ledger.size;
    expectProblem(await call(`${b.url}/kbs/v0/attest`, { body, headers: { cookie } }), 401, 'AttestationFailed', 'broker.evidence-kind');
    await expectDeniedInAudit(before, 'broker.evidence-kind');
  });

  it('a token for another session, and a session that never attested', async () => {
    const a = await attestSim(b.url, sim);
    const other = await auth(b.url);
    const before = b.broker.ledger.size;
    expectProblem(
      await call(`${b.url}/kbs/v0/resource/app/key/db`, { headers: { cookie: other.cookie, authorization: `Bearer ${a.token}` } }),
      401, 'TokenVerifierError', 'broker.token-session-mismatch',
    );
    expectProblem(await call(`${b.url}/kbs/v0/resource/app/key/db`, { headers: { cookie: other.cookie } }), 401, 'UnAuthenticatedCookie', 'broker.session-not-attested');
    expectProblem(await call(`${b.url}/kbs/v0/resource/app/key/db`, { headers: { authorization: `Bearer ${a.token!.slice(0, -4)}AAAA` } }), 401, 'TokenVerifierError', 'broker.token-invalid');
    expectProblem(await call(`${b.url}/kbs/v0/resource/app/key/db`, { headers: { authorization: 'Basic Zm9vOmJhcg==' } }), 401, 'TokenVerifierError', 'broker.token-invalid');
    await expectDeniedInAudit(before, 'broker.token-session-mismatch', { resource: 'app/key/db' });
    await expectDeniedInAudit(before, 'broker.session-not-attested');
  });
});

/** A 2048-bit modulus (base64url) of a real key, or the same with its lowest bit cleared. */
function rsaModulus(lowBit: 0 | 1): string {
  const n = Buffer.from(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }).n!, 'base64url');
  n[n.length - 1] = (n[n.length - 1]! & 0xfe) | lowBit;
  return n.toString('base64url');
}

describe('malformed requests', () => {
  const cases: [string, () => Promise<Awaited<ReturnType<typeof call>>>, number, string, string][] = [
    ['not JSON', () => call(`${b.url}/kbs/v0/auth`, { rawBody: '{"version":' }), 400, 'InvalidRequest', 'broker.json'],
    ['unknown Request member', () => call(`${b.url}/kbs/v0/auth`, { body: { version: '0.4.0', tee: 'snp', 'extra-params': '', admin: true } }), 400, 'InvalidRequest', 'broker.schema'],
    ['missing extra-params', () => call(`${b.url}/kbs/v0/auth`, { body: { version: '0.4.0', tee: 'snp' } }), 400, 'InvalidRequest', 'broker.schema'],
    ['unknown tee name', () => call(`${b.url}/kbs/v0/auth`, { body: { version: '0.4.0', tee: 'snp2', 'extra-params': '' } }), 400, 'InvalidRequest', 'broker.schema'],
    ['wrong protocol version', () => call(`${b.url}/kbs/v0/auth`, { body: { version: '0.1.1', tee: 'snp', 'extra-params': '' } }), 401, 'FailedAuthentication', 'broker.protocol-version'],
    ['unsupported tee', () => call(`${b.url}/kbs/v0/auth`, { body: { version: '0.4.0', tee: 'sgx', 'extra-params': '' } }), 401, 'FailedAuthentication', 'broker.tee-unsupported'],
    ['oversized auth body', () => call(`${b.url}/kbs/v0/auth`, { body: { version: '0.4.0', tee: 'snp', 'extra-params': 'x'.repeat(8000) } }), 413, 'urn:attex:broker:problem:PayloadTooLarge', 'broker.body-too-large'],
    ['text/plain body', () => call(`${b.url}/kbs/v0/auth`, { rawBody: 'hello', headers: { 'content-type': 'text/plain' } }), 415, 'urn:attex:broker:problem:UnsupportedMediaType', 'broker.media-type'],
    ['attest without a cookie', () => call(`${b.url}/kbs/v0/attest`, { body: { 'runtime-data': { nonce: 'n', 'tee-pubkey': { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: 'AA', y: 'AA' } }, 'tee-evidence': {} } }), 401, 'MissingCookie', 'broker.cookie-missing'],
    ['attest with an unknown session', () => call(`${b.url}/kbs/v0/attest`, { body: { 'runtime-data': { nonce: 'n', 'tee-pubkey': { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: 'AA', y: 'AA' } }, 'tee-evidence': {} }, headers: { cookie: 'kbs-session-id=AAAAAAAAAAAAAAAAAAAAAAAA' } }), 401, 'InvalidCookie', 'broker.session-unknown'],
    ['resource with no credentials', () => call(`${b.url}/kbs/v0/resource/app/key/db`), 401, 'TokenNotFound', 'broker.token-missing'],
    // Refused by the router before any handler: still problems, still audited.
    ['a broken percent-encoding in a resource path', () => call(`${b.url}/kbs/v0/resource/app/key/%zz`), 400, 'InvalidRequest', 'broker.request'],
    ['a 129-character resource path segment', () => call(`${b.url}/kbs/v0/resource/app/key/${'k'.repeat(129)}`), 404, 'InvalidRequestPath', 'broker.resource-path'],
    ['an attestation body nested 10,000 levels deep', async () => {
      const s = await auth(b.url);
      return call(`${b.url}/kbs/v0/attest`, { rawBody: `{"runtime-data":${'['.repeat(10_000)}${']'.repeat(10_000)}}`, headers: { cookie: s.cookie } });
    }, 400, 'InvalidRequest', 'broker.json'],
  ];
  for (const [name, send, status, type, code] of cases) {
    it(name, async () => {
      const before = b.broker.ledger.size;
      expectProblem(await send(), status, type, code);
      await expectDeniedInAudit(before, code, { status });
    });
  }

  it('requests the HTTP parser refuses get a problem with a stable code', async () => {
    const exchange = async (raw: string) => {
      const { socket, closed } = await rawConnection(b.url);
      socket.write(raw);
      const [head = '', body = ''] = (await closed).split('\r\n\r\n');
      return { status: Number(head.split(' ')[1]), contentType: /content-type: ([^\r]*)/i.exec(head)?.[1] ?? '', code: (JSON.parse(body) as { code?: unknown }).code };
    };
    expect(await exchange(`GET /kbs/v0/resource/app/key/db HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`)).toEqual({ status: 431, contentType: 'application/problem+json', code: 'broker.headers-too-large' });
    expect(await exchange('POST /kbs/v0/auth HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n')).toEqual({ status: 400, contentType: 'application/problem+json', code: 'broker.request' });
    // Node answers these two with a bare status; the broker with a problem.
    expect(await exchange('GET /kbs/v0/resource/app/key/db HTTP/1.1\r\nConnection: close\r\n\r\n')).toEqual({ status: 400, contentType: 'application/problem+json; charset=utf-8', code: 'broker.request' });
    expect(await exchange('POST /kbs/v0/auth HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n')).toEqual({ status: 417, contentType: 'application/problem+json', code: 'broker.expectation-failed' });
  });

  it('attestation bodies with unknown members, bad keys or bad evidence', async () => {
    const { nonce } = await auth(b.url);
    const key = await teeKey();
    const good = await attestationFor(sim, { nonce, 'tee-pubkey': key.pub });
    const bad: [unknown, string][] = [
      [{ ...good, extra: 1 }, 'broker.schema'],
      [{ ...good, 'runtime-data': { ...good['runtime-data'], 'tee-pubkey': { ...key.pub, d: 'secret' } } }, 'broker.schema'],
      [{ ...good, 'runtime-data': { ...good['runtime-data'], 'tee-pubkey': { ...key.pub, alg: 'RSA1_5' } } }, 'broker.schema'],
      [{ ...good, 'init-data': { format: 'toml', body: 'x' } }, 'broker.schema'],
      [{ ...good, 'runtime-data': { ...good['runtime-data'], 'attex-receipt-key': { nested: 'x'.repeat(10) } } }, 'broker.schema'],
      [{ ...good, 'runtime-data': { ...good['runtime-data'], Upper: 'x' } }, 'broker.schema'],
      [{ ...good, 'tee-evidence': { ...good['tee-evidence'], unknown: 'x' } }, 'evidence.malformed'],
      // RSA keys that import but do not protect anything: e = 1 (the JWE would be readable by
      // anyone) and an even modulus.
      [{ ...good, 'runtime-data': { ...good['runtime-data'], 'tee-pubkey': { kty: 'RSA', alg: 'RSA-OAEP-256', n: rsaModulus(1), e: 'AQ' } } }, 'broker.tee-pubkey'],
      [{ ...good, 'runtime-data': { ...good['runtime-data'], 'tee-pubkey': { kty: 'RSA', alg: 'RSA-OAEP-256', n: rsaModulus(0), e: 'AQAB' } } }, 'broker.tee-pubkey'],
      [{ ...good, 'tee-evidence': { primary_evidence: good['tee-evidence'], additional_evidence: '{"tdx":{}}' } }, 'broker.tee-evidence'],
    ];
    for (const [body, code] of bad) {
      // Schema failures leave the session usable; evidence failures consume its nonce.
      const s = await auth(b.url);
      const withNonce = JSON.parse(JSON.stringify(body).replaceAll(nonce, s.nonce));
      const before = b.broker.ledger.size;
      const res = await call(`${b.url}/kbs/v0/attest`, { body: withNonce, headers: { cookie: s.cookie } });
      expectProblem(res, 400, 'InvalidRequest', code);
      await expectDeniedInAudit(before, code, { event: 'attest' });
    }
    // Trustee's CompositeEvidence wrapper with no additional evidence is accepted.
    const s = await auth(b.url);
    const rd = { nonce: s.nonce, 'tee-pubkey': key.pub };
    const wrapped = { 'runtime-data': rd, 'tee-evidence': { primary_evidence: (await attestationFor(sim, rd))['tee-evidence'], additional_evidence: '' } };
    expect((await call(`${b.url}/kbs/v0/attest`, { body: wrapped, headers: { cookie: s.cookie } })).status).toBe(200);
  });
});

describe('secrets stay secret', () => {
  it('no secret value in logs, audit entries, the audit log files or the state directory', async () => {
    const values = [SECRET_DB, SECRET_API, SECRET_HW];
    const needles = values.flatMap((v) => [v, Buffer.from(v).toString('base64'), Buffer.from(v).toString('base64url'), Buffer.from(v).toString('hex')]);
    const logText = b.logs.join('');
    expect(logText.length).toBeGreaterThan(0);
    const auditText = JSON.stringify(await b.auditEntries());
    const files: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        if (e.isDirectory()) await walk(path.join(d, e.name));
        else files.push(path.join(d, e.name));
      }
    };
    await walk(b.stateDir);
    const fileText = (await Promise.all(files.map((f) => readFile(f)))).map((buf) => buf.toString('latin1')).join('\n');
    for (const n of needles) {
      expect(logText).not.toContain(n);
      expect(auditText).not.toContain(n);
      expect(fileText).not.toContain(n);
    }
    // Credentials are redacted in logs: no session cookie or bearer token value appears.
    expect(logText).not.toMatch(/kbs-session-id=[A-Za-z0-9_-]{16,}/);
    expect(logText).not.toMatch(/eyJ[A-Za-z0-9_-]+\.eyJ/);
  });
});

describe('when the audit log fails', () => {
  it('a refusal that cannot be audited is 500 broker.audit, and nothing is released', async () => {
    const t = await tempDir('attex-broker-audit-');
    const other = await startBroker({ sim, dir: t.dir, resourcePolicy: resourcePolicy(measurement) });
    try {
      await other.broker.ledger.close();
      expectProblem(await call(`${other.url}/kbs/v0/resource/app/key/db`), 500, 'urn:attex:broker:problem:Internal', 'broker.audit');
    } finally {
      await other.close().catch(() => undefined);
      await t.cleanup();
    }
  });
});
