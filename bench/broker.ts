/**
 * Key broker benchmark (prints figures; not a test): complete RCAR round trips per second over
 * loopback (POST /auth, simulated SNP evidence, POST /attest, GET one resource, decrypt), and
 * where the time goes: evidence generation, verification, appraisal, token signing, JWE, the
 * durable audit append, and HTTP plus everything else (the remainder).
 * Usage: npm run bench:broker [-- --seconds 5 --max 2000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { exportJWK, generateKeyPair } from 'jose';
import pino from 'pino';
import { reportDataFor } from '../src/attestation/binding/index.ts';
import { openSimulatedTee } from '../src/attestation/sim/index.ts';
import { createAuditLog, loadOrCreateAuditSigner, type AuditLog } from '../src/broker/audit.ts';
import { decryptFromBroker, encryptToTee } from '../src/broker/jwe.ts';
import { openAuditLedger } from '../src/broker/open.ts';
import { loadResourcePolicy } from '../src/broker/policy/index.ts';
import type { TeePubKey } from '../src/broker/protocol.ts';
import { createBrokerServer } from '../src/broker/server.ts';
import { openSecretStore } from '../src/broker/store/index.ts';
import { issueEarToken, loadOrCreateTokenKey } from '../src/broker/token.ts';
import type { EvidenceVerifier } from '../src/broker/verifier.ts';
import { loadBrokerVerifier } from '../src/broker/wiring.ts';
import { toHex } from '../src/util/index.ts';
import { callBroker } from '../src/broker/client/http.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, max: { type: 'string', default: '2000' } } });
const seconds = Number(values.seconds);
const max = Number(values.max);

const work = mkdtempSync(path.join(tmpdir(), 'attex-bench-broker-'));
const totals = { evidence: 0, verify: 0, appraise: 0, audit: 0, total: 0 };
const time = async <T>(key: keyof typeof totals, f: () => Promise<T> | T): Promise<T> => {
  const t = performance.now();
  try {
    return await f();
  } finally {
    totals[key] += performance.now() - t;
  }
};

try {
  const sim = await openSimulatedTee(path.join(work, 'sim'));
  const m = toHex(sim.measurement);
  const { verifier: real } = await loadBrokerVerifier({
    policy: { version: 1, id: 'bench', evidenceKinds: ['snp'], allowSimulated: true, snp: { measurements: [m] } },
    allowSimulated: true,
    extraAmd: sim.amdRoots,
    extraIntel: sim.intelRoots,
  });
  const verifier: EvidenceVerifier = {
    decode: real.decode,
    verify: (pkg, now) => time('verify', () => real.verify(pkg, now)),
    appraise: (r, e) => {
      const t = performance.now();
      const out = real.appraise(r, e);
      totals.appraise += performance.now() - t;
      return out;
    },
  };
  const state = path.join(work, 'broker');
  const store = await openSecretStore(path.join(state, 'secrets'), new Uint8Array(32).fill(1));
  await store.put('bench/key/one', new TextEncoder().encode('x'.repeat(64)));
  const tokenKey = await loadOrCreateTokenKey(state);
  const ledger = await openAuditLedger(state, { checkpointInterval: 1000 });
  const inner = createAuditLog(await loadOrCreateAuditSigner(state), ledger);
  const audit: AuditLog = { ...inner, record: (e, now) => time('audit', () => inner.record(e, now)) };
  const server = await createBrokerServer({
    verifier,
    store,
    tokenKey,
    audit,
    resourcePolicy: loadResourcePolicy({ version: 1, id: 'bench', rules: [{ resources: ['bench/*/*'], tees: ['sim-snp'], measurements: [m], minStatus: 'warning', allowSimulated: true }] }),
    logger: pino({ level: 'silent' }),
    // One client address drives every round: the per-address budget is not what is measured here.
    rateLimit: { ratePerSecond: 1e9, burst: 1e9 },
  });
  const url = await server.listen();

  const round = async () => {
    const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' });
    const jwk = await exportJWK(publicKey);
    const auth = await callBroker(`${url}/kbs/v0/auth`, { method: 'POST', timeoutMs: 10_000, body: { version: '0.4.0', tee: 'snp', 'extra-params': '' } });
    const cookie = String(auth.setCookie[0]).split(';')[0]!;
    const runtimeData = { nonce: (auth.json as { nonce: string }).nonce, 'tee-pubkey': { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: jwk.x!, y: jwk.y! } };
    const evidence = await time('evidence', () => sim.snpEvidence(reportDataFor(runtimeData)));
    await callBroker(`${url}/kbs/v0/attest`, { method: 'POST', timeoutMs: 10_000, headers: { cookie }, body: { 'runtime-data': runtimeData, 'tee-evidence': evidence } });
    const res = await callBroker(`${url}/kbs/v0/resource/bench/key/one`, { method: 'GET', timeoutMs: 10_000, headers: { cookie } });
    await decryptFromBroker(res.json, privateKey);
  };

  await round(); // warm-up
  for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] = 0;
  let n = 0;
  const start = performance.now();
  while (n < max && performance.now() - start < seconds * 1000) {
    await time('total', round);
    n++;
  }
  const elapsed = (performance.now() - start) / 1000;

  // Token signing and JWE run inside the handlers; measure them alone on the same inputs.
  const { publicKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' });
  const jwk = await exportJWK(publicKey);
  const tee: TeePubKey = { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: jwk.x!, y: jwk.y! };
  const reps = 300;
  let t = performance.now();
  for (let i = 0; i < reps; i++) await encryptToTee(tee, new Uint8Array(64));
  const jweMs = (performance.now() - t) / reps;
  t = performance.now();
  for (let i = 0; i < reps; i++) {
    await issueEarToken(tokenKey, {
      issuer: 'attex-broker', build: 'bench', now: new Date(), ttlSeconds: 900, nonce: 'n', sessionHash: '00', submodName: 'snp',
      submod: { 'ear.status': 'affirming', 'ear.trustworthiness-vector': {}, 'ear.appraisal-policy-id': 'bench', 'ear.veraison.annotated-evidence': { tee: 'sim-snp', kind: 'snp', simulated: true, measurement: m, debug: false, 'evidence-digest': 'x', 'report-data': '00', 'tee-pubkey': tee, 'runtime-data': {}, 'verifier-outcome': 'accept', 'tcb-status': null, 'appraisal-policy-digest': 'x' } },
    });
  }
  const tokenMs = (performance.now() - t) / reps;

  const per = (ms: number) => ms / n;
  const rows: [string, number][] = [
    ['evidence generation (sim SNP, client side)', per(totals.evidence)],
    ['evidence verification (chain + report signature)', per(totals.verify)],
    ['appraisal', per(totals.appraise)],
    ['EAR token signing (ES256, measured alone)', tokenMs],
    ['JWE to the TEE key (ECDH-ES+A256KW, measured alone)', jweMs],
    ['audit appends (DSSE sign + durable ledger append, 2 per round)', per(totals.audit)],
  ];
  const accounted = rows.reduce((s, [, v]) => s + v, 0);
  rows.push(['HTTP, client key generation, decrypt and the rest (remainder)', per(totals.total) - accounted]);
  console.log(`broker round trips (auth + sim SNP evidence + attest + 1 resource + decrypt), loopback, sequential`);
  console.log(`  ${n} rounds in ${elapsed.toFixed(2)} s: ${(n / elapsed).toFixed(1)} rounds/s, ${per(totals.total).toFixed(2)} ms per round`);
  for (const [name, ms] of rows) console.log(`  ${name.padEnd(66)} ${ms.toFixed(3).padStart(8)} ms  ${((100 * ms) / per(totals.total)).toFixed(1).padStart(5)}%`);
  await server.close();
  await ledger.close();
} finally {
  rmSync(work, { recursive: true, force: true });
}
