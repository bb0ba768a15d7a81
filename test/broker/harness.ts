/**
 * Test harness: a real broker on loopback (state dir, encrypted store, audit ledger, real
 * verifiers and appraisal) trusting a simulated TEE, plus raw KBS calls for negative tests.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import pino from 'pino';
import { request } from 'undici';
import { reportDataFor } from '../../src/attestation/binding/index.ts';
import { openSimulatedTee, type SimulatedTee } from '../../src/attestation/sim/index.ts';
import { toHex } from '../../src/util/index.ts';
import { openBroker, type OpenedBroker } from '../../src/broker/open.ts';
import { loadResourcePolicy } from '../../src/broker/policy/index.ts';
import type { RuntimeData, TeePubKey } from '../../src/broker/protocol.ts';
import { loadBrokerVerifier } from '../../src/broker/wiring.ts';
import { verifyDsse } from '../../src/receipts/index.ts';
import type { AuditEntry } from '../../src/broker/audit.ts';

export const OPERATOR_KEY = new Uint8Array(32).fill(0x42);

/** One simulated TEE per test file (its PKI takes a second or two to generate). */
export async function openSim(dir: string, measurementInput?: Uint8Array): Promise<SimulatedTee> {
  return openSimulatedTee(path.join(dir, 'sim'), measurementInput === undefined ? {} : { measurementInput });
}

/** An appraisal policy accepting the simulated TEE's measurement, debug off (sim is appraised `warning`). */
export function appraisalPolicyFor(measurementHex: string, opts: { allowSimulated?: boolean } = {}): unknown {
  return {
    version: 1,
    id: 'broker-test',
    evidenceKinds: ['snp', 'azure-hcl-snp', 'tdx'],
    allowSimulated: opts.allowSimulated ?? true,
    allowDebug: false,
    snp: { measurements: [measurementHex], allowedVmpls: [0] },
    tdx: { mrTd: [measurementHex], acceptableTcbStatuses: ['UpToDate'], requireSeptVeDisable: true },
  };
}

export interface TestBroker {
  readonly url: string;
  readonly broker: OpenedBroker;
  readonly logs: string[];
  readonly stateDir: string;
  auditEntries(): Promise<AuditEntry[]>;
  close(): Promise<void>;
}

export interface StartOptions {
  readonly sim: SimulatedTee;
  readonly dir: string;
  readonly allowSimulated?: boolean;
  readonly resourcePolicy: unknown;
  readonly appraisalPolicy?: unknown;
  readonly clock?: () => Date;
  readonly sessionTtlSeconds?: number;
  readonly tokenTtlSeconds?: number;
  /** Trust the real AMD/Intel roots from the shared vectors instead of the repository's. */
  readonly rootsDir?: string;
  readonly port?: number;
  readonly rateLimit?: { readonly ratePerSecond: number; readonly burst: number };
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Hold every evidence verification this long (a slow verifier, e.g. fetching collateral). */
  readonly verifyDelayMs?: number;
}

export async function startBroker(o: StartOptions): Promise<TestBroker> {
  const stateDir = await mkdtemp(path.join(o.dir, 'broker-'));
  const allowSimulated = o.allowSimulated ?? true;
  const { verifier } = await loadBrokerVerifier({
    policy: o.appraisalPolicy ?? appraisalPolicyFor(toHex(o.sim.measurement)),
    allowSimulated,
    extraAmd: o.sim.amdRoots,
    extraIntel: o.sim.intelRoots,
    ...(o.rootsDir === undefined ? {} : { rootsDir: o.rootsDir }),
  });
  const logs: string[] = [];
  const logger = pino({ level: 'debug', redact: { paths: (await import('../../src/broker/server.ts')).LOG_REDACT_PATHS, censor: '[redacted]' } }, {
    write: (line: string) => void logs.push(line),
  });
  const delay = o.verifyDelayMs;
  const broker = await openBroker({
    stateDir,
    operatorKey: OPERATOR_KEY,
    verifier: delay === undefined ? verifier : Object.assign(Object.create(verifier) as typeof verifier, {
      verify: async (...args: Parameters<typeof verifier.verify>) => {
        await new Promise((resolve) => setTimeout(resolve, delay));
        return verifier.verify(...args);
      },
    }),
    resourcePolicy: loadResourcePolicy(o.resourcePolicy),
    logger,
    checkpointInterval: 0,
    ...(o.clock === undefined ? {} : { clock: o.clock }),
    ...(o.sessionTtlSeconds === undefined ? {} : { sessionTtlSeconds: o.sessionTtlSeconds }),
    ...(o.tokenTtlSeconds === undefined ? {} : { tokenTtlSeconds: o.tokenTtlSeconds }),
    ...(o.rateLimit === undefined ? {} : { rateLimit: o.rateLimit }),
    ...(o.tls === undefined ? {} : { tls: o.tls }),
  });
  const url = await broker.listen(o.port === undefined ? {} : { port: o.port });
  return {
    url,
    broker,
    logs,
    stateDir,
    async auditEntries() {
      const out: AuditEntry[] = [];
      for (let i = 0; i < broker.ledger.size; i++) {
        const { payloadType, payload } = verifyDsse(await broker.ledger.get(i), broker.auditSigner.publicKeyRaw);
        if (payloadType !== 'application/vnd.attex.broker-audit+json') throw new Error('unexpected payload type');
        out.push(JSON.parse(new TextDecoder().decode(payload)) as AuditEntry);
      }
      return out;
    },
    close: () => broker.close(),
  };
}

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface Raw {
  readonly status: number;
  readonly contentType: string;
  readonly json: Record<string, unknown>;
  readonly setCookie: string | undefined;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export async function call(url: string, opts: { method?: 'GET' | 'POST'; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {}): Promise<Raw> {
  const body = opts.rawBody ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  const res = await request(url, {
    method: opts.method ?? (body === undefined ? 'GET' : 'POST'),
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...opts.headers },
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.body.text();
  const sc = res.headers['set-cookie'];
  return {
    status: res.statusCode,
    contentType: String(res.headers['content-type'] ?? ''),
    json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
    setCookie: Array.isArray(sc) ? sc[0] : sc,
    headers: res.headers,
  };
}

export function cookieOf(setCookie: string | undefined): string {
  const first = (setCookie ?? '').split(';')[0] ?? '';
  if (!first.startsWith('kbs-session-id=')) throw new Error('no kbs-session-id cookie');
  return first;
}

export async function auth(url: string, tee = 'snp'): Promise<{ cookie: string; nonce: string; raw: Raw }> {
  const raw = await call(`${url}/kbs/v0/auth`, { body: { version: '0.4.0', tee, 'extra-params': '' } });
  if (raw.status !== 200) throw new Error(`auth failed: ${raw.status} ${JSON.stringify(raw.json)}`);
  return { cookie: cookieOf(raw.setCookie), nonce: raw.json['nonce'] as string, raw };
}

export async function teeKey(): Promise<{ pub: TeePubKey; privateKey: CryptoKey }> {
  const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' });
  const jwk = await exportJWK(publicKey);
  return { pub: { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: jwk.x!, y: jwk.y! }, privateKey: privateKey as CryptoKey };
}

/** A well-formed Attestation whose SNP evidence binds `runtimeData` (or `bindOverride`). */
export async function attestationFor(sim: SimulatedTee, runtimeData: RuntimeData, bindOverride?: RuntimeData) {
  const evidence = await sim.snpEvidence(reportDataFor(bindOverride ?? runtimeData));
  return { 'runtime-data': runtimeData, 'tee-evidence': evidence };
}

/** auth + attest with the simulated TEE; returns the session cookie, token and TEE key. */
export async function attestSim(url: string, sim: SimulatedTee) {
  const { cookie, nonce } = await auth(url);
  const key = await teeKey();
  const body = await attestationFor(sim, { nonce, 'tee-pubkey': key.pub });
  const res = await call(`${url}/kbs/v0/attest`, { body, headers: { cookie } });
  return { cookie, nonce, key, body, res, token: res.json['token'] as string | undefined };
}
