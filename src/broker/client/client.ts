/**
 * Executor side of the KBS protocol. One round: a fresh in-memory P-256 TEE key, /auth for a
 * nonce, runtime data {nonce, tee-pubkey, ...extra}, evidence over reportDataFor(runtime data),
 * /attest for the token, then each resource fetched and decrypted in memory. The result is a
 * SecretSource for the sandbox plus what the executor records in its attestation record.
 * Rounds retry with exponential backoff and full jitter while the broker is unreachable, and
 * renew before the token expires.
 */
import { exportJWK, generateKeyPair, decodeJwt, importJWK, jwtVerify, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import type { Dispatcher } from 'undici';
import { AttexError } from '../../errors/index.ts';
import { reportDataFor } from '../../attestation/binding/index.ts';
import type { EvidencePackage } from '../../attestation/evidence/index.ts';
import type { EvidenceProvider } from '../../attestation/providers/index.ts';
import { decryptFromBroker } from '../jwe.ts';
import { parseResourcePath } from '../paths.ts';
import { sessionHash } from '../session.ts';
import { KBS_PROTOCOL_VERSION, KBS_SESSION_COOKIE, type RuntimeData, type SupportedTee, type TeePubKey } from '../protocol.ts';
import { BrokerCallError, callBroker } from './http.ts';

export type { EvidenceProvider };

/** The sandbox's view of released secrets. */
export interface SecretSource {
  has(name: string): boolean;
  get(name: string): Uint8Array | undefined;
}

export interface RetryOptions {
  /** Attempts per round before giving up (default 6). */
  readonly attempts?: number;
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
}

export interface AttestAndFetchOptions {
  readonly brokerUrl: string;
  readonly provider: EvidenceProvider;
  /** Resource paths `repo/type/tag` to fetch. */
  readonly resources: readonly string[];
  /** Manifest secret name -> resource path; without it a secret's name is its resource path. */
  readonly secretNames?: Readonly<Record<string, string>>;
  /** KBS tee name sent in the Request (default `snp`). */
  readonly tee?: SupportedTee;
  /** Extra runtime-data members, e.g. `{ "attex-receipt-key": <base64> }`. */
  readonly runtimeDataExtra?: Readonly<Record<string, string>>;
  readonly retry?: RetryOptions;
  /** Renew this many seconds before the token expires (default: a fifth of its lifetime, at least 5 s). Set `renew: false` to disable. */
  readonly renewMarginSeconds?: number;
  readonly renew?: boolean;
  readonly timeoutMs?: number;
  readonly dispatcher?: Dispatcher;
  readonly signal?: AbortSignal;
  readonly clock?: () => Date;
  /** The broker's token-signing public key (its JWKS entry); when set, tokens must verify with it. */
  readonly tokenKey?: JWK;
  /** Called after each successful renewal, or with the error of a failed one. */
  readonly onRenew?: (err: Error | null) => void;
}

export interface AttestationRound {
  readonly evidence: EvidencePackage;
  readonly runtimeData: RuntimeData;
  readonly token: string;
  /** Token expiry, seconds since the epoch. */
  readonly tokenExpiresAt: number;
}

export interface BrokerSession {
  /** False until the first attestation succeeded, and again once the token expired unrenewed or the session closed. */
  readonly ready: boolean;
  /** Resolves when the first round succeeded; rejects if it failed for good. */
  readonly whenReady: Promise<void>;
  /** The current round (evidence, runtime data, token), undefined until ready. */
  readonly current: AttestationRound | undefined;
  readonly secrets: SecretSource;
  /** Run a new round now (new key, nonce, evidence, token and secrets). */
  renewNow(): Promise<void>;
  /** Stop renewing and wipe the secrets from memory. */
  close(): void;
}

/** What `attestAndFetch` resolves to: a ready session with its first round at hand. */
export interface AttestedBrokerSession extends BrokerSession, AttestationRound {}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(new AttexError('broker.client.aborted', 'aborted'));
    // The caller's signal lives as long as the executor: its listener goes with the timer.
    const onAbort = () => { clearTimeout(t); reject(new AttexError('broker.client.aborted', 'aborted')); };
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

const SESSION_CLOSED = new AttexError('broker.client.aborted', 'the broker session was closed');

/** Tokens must outlive a round trip and must not claim to live for months. */
const MIN_TOKEN_LIFETIME_MS = 2_000;
const MAX_TOKEN_LIFETIME_MS = 30 * 24 * 3600 * 1000;
/** setTimeout fires at once beyond this; a renewal further away is re-armed when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** The broker's challenge: standard base64 (Trustee and attex send 32 bytes). */
const NONCE = /^[A-Za-z0-9+/]{16,128}={0,2}$/;

const badToken = (detail: string, status: number) => new BrokerCallError('broker.client.bad-token', `the broker's token ${detail}`, { retryable: false, status });

/**
 * The token must be for this round: the challenge, the session and the TEE key we attested
 * with, and an expiry that makes sense. Its signature is checked when the broker's key is
 * configured (`tokenKey`); without it, what the token says is the broker's word, over a
 * transport the operator must trust (TLS).
 */
async function checkToken(token: string, round: { nonce: string; cookie: string; teePubkey: { readonly x: string; readonly y: string }; status: number }, o: AttestAndFetchOptions, now: Date): Promise<number> {
  let claims: JWTPayload;
  try {
    claims = o.tokenKey === undefined
      ? decodeJwt(token)
      : (await jwtVerify(token, await importJWK(o.tokenKey, 'ES256'), { algorithms: ['ES256'], currentDate: now })).payload;
  } catch {
    throw badToken(o.tokenKey === undefined ? 'is not a JWT' : 'does not verify with the configured broker key', round.status);
  }
  const exp = claims.exp;
  const lifetime = typeof exp === 'number' && Number.isSafeInteger(exp) ? exp * 1000 - now.getTime() : NaN;
  if (!(lifetime >= MIN_TOKEN_LIFETIME_MS && lifetime <= MAX_TOKEN_LIFETIME_MS)) throw badToken('has no usable expiry (exp must be 2 s to 30 days ahead)', round.status);
  if (claims['eat_nonce'] !== round.nonce) throw badToken('answers another challenge (eat_nonce)', round.status);
  const sessionId = round.cookie.slice(round.cookie.indexOf('=') + 1);
  if (claims['attex.kbs-session'] !== sessionHash(sessionId)) throw badToken('belongs to another session', round.status);
  const submods = claims['submods'];
  const subs = typeof submods === 'object' && submods !== null ? Object.values(submods as Record<string, unknown>) : [];
  const annotated = (subs[0] as Record<string, unknown> | undefined)?.['ear.veraison.annotated-evidence'] as { 'tee-pubkey'?: { x?: unknown; y?: unknown } } | undefined;
  const key = annotated?.['tee-pubkey'];
  if (subs.length !== 1 || key?.x !== round.teePubkey.x || key?.y !== round.teePubkey.y) throw badToken('was issued for another TEE key', round.status);
  return exp as number;
}

/** Exponential backoff with full jitter: uniform in [0, min(max, base * 2^attempt)]. */
export function backoffDelay(attempt: number, base: number, max: number, random = Math.random): number {
  return Math.floor(random() * Math.min(max, base * 2 ** attempt));
}

function sessionCookie(setCookie: readonly string[]): string {
  for (const line of setCookie) {
    const first = line.split(';')[0] ?? '';
    const eq = first.indexOf('=');
    if (eq > 0 && first.slice(0, eq).trim() === KBS_SESSION_COOKIE) return first.slice(eq + 1).trim();
  }
  throw new BrokerCallError('broker.client.no-cookie', 'the broker did not set a kbs-session-id cookie', { retryable: false, status: null });
}

interface RoundResult extends AttestationRound {
  readonly values: Map<string, Uint8Array>;
}

async function oneRound(o: AttestAndFetchOptions): Promise<RoundResult> {
  const base = o.brokerUrl.replace(/\/+$/, '');
  const timeoutMs = o.timeoutMs ?? 30_000;
  const common = { timeoutMs, ...(o.dispatcher === undefined ? {} : { dispatcher: o.dispatcher }), ...(o.signal === undefined ? {} : { signal: o.signal }) };

  const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: false });
  const pub = await exportJWK(publicKey);
  const teePubkey: TeePubKey = { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: pub.x!, y: pub.y! };

  const auth = await callBroker(`${base}/kbs/v0/auth`, { ...common, method: 'POST', body: { version: KBS_PROTOCOL_VERSION, tee: o.tee ?? 'snp', 'extra-params': '' } });
  const nonce = (auth.json as { nonce?: unknown } | null)?.nonce;
  if (typeof nonce !== 'string' || !NONCE.test(nonce)) throw new BrokerCallError('broker.client.bad-response', 'challenge has no nonce (standard base64, 16-128 characters)', { retryable: false, status: auth.status });
  const cookie = `${KBS_SESSION_COOKIE}=${sessionCookie(auth.setCookie)}`;

  const runtimeData: RuntimeData = { ...o.runtimeDataExtra, nonce, 'tee-pubkey': teePubkey };
  const evidence = await o.provider.collect(reportDataFor(runtimeData));

  const attest = await callBroker(`${base}/kbs/v0/attest`, {
    ...common,
    method: 'POST',
    headers: { cookie },
    body: { 'runtime-data': runtimeData, 'tee-evidence': evidence },
  });
  const token = (attest.json as { token?: unknown } | null)?.token;
  if (typeof token !== 'string') throw new BrokerCallError('broker.client.bad-response', 'attest response has no token', { retryable: false, status: attest.status });
  const exp = await checkToken(token, { nonce, cookie, teePubkey: { x: pub.x!, y: pub.y! }, status: attest.status }, o, (o.clock ?? (() => new Date()))());

  const values = new Map<string, Uint8Array>();
  try {
    for (const path of o.resources) {
      const res = await callBroker(`${base}/kbs/v0/resource/${path}`, { ...common, method: 'GET', headers: { cookie } });
      values.set(path, await decryptFromBroker(res.json, privateKey as CryptoKey));
    }
  } catch (err) {
    // A round is all or nothing: do not keep the secrets already decrypted.
    for (const v of values.values()) v.fill(0);
    throw err;
  }
  return { evidence, runtimeData, token, tokenExpiresAt: exp, values };
}

async function roundWithRetry(o: AttestAndFetchOptions): Promise<RoundResult> {
  const attempts = o.retry?.attempts ?? 6;
  const baseDelay = o.retry?.baseDelayMs ?? 200;
  const maxDelay = o.retry?.maxDelayMs ?? 10_000;
  for (let attempt = 0; ; attempt++) {
    try {
      return await oneRound(o);
    } catch (err) {
      const retryable = err instanceof BrokerCallError && err.retryable;
      if (!retryable || attempt + 1 >= attempts) throw err;
      await sleep(backoffDelay(attempt, baseDelay, maxDelay), o.signal);
    }
  }
}

function validateOptions(o: AttestAndFetchOptions): void {
  let url: URL;
  try {
    url = new URL(o.brokerUrl);
  } catch {
    throw new AttexError('broker.client.options', 'brokerUrl is not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new AttexError('broker.client.options', 'brokerUrl must be http(s)');
  for (const p of o.resources) parseResourcePath(p);
  for (const [name, p] of Object.entries(o.secretNames ?? {})) {
    if (!o.resources.includes(p)) throw new AttexError('broker.client.options', `secret ${name} maps to a resource that is not fetched`);
  }
}

/**
 * Start a broker session: returns at once with `ready` false, attests in the background
 * (retrying while the broker is unreachable), then renews before each token expires.
 */
export function openBrokerSession(options: AttestAndFetchOptions): BrokerSession {
  validateOptions(options);
  // close() stops a round in flight too: its calls and retry delays end at once, so nothing
  // keeps running (or logging) against a dispatcher the owner closes next.
  const stop = new AbortController();
  const o: AttestAndFetchOptions = { ...options, signal: options.signal === undefined ? stop.signal : AbortSignal.any([options.signal, stop.signal]) };
  const clock = o.clock ?? (() => new Date());
  let current: RoundResult | undefined;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;

  const nameToPath = (name: string) => (o.secretNames === undefined ? name : Object.hasOwn(o.secretNames, name) ? o.secretNames[name] : undefined);
  const live = () => !closed && current !== undefined && clock().getTime() < current.tokenExpiresAt * 1000;
  const wipe = (values: Map<string, Uint8Array>) => {
    for (const v of values.values()) v.fill(0);
    values.clear();
  };
  const later = (ms: number) => {
    if (closed) return;
    timer = setTimeout(() => void renew().catch(() => {}), Math.max(0, ms));
    timer.unref();
  };
  const schedule = () => {
    if (closed || o.renew === false || current === undefined) return;
    const lifetime = current.tokenExpiresAt * 1000 - clock().getTime();
    const margin = (o.renewMarginSeconds ?? Math.max(5, lifetime / 5000)) * 1000;
    const due = lifetime - margin;
    if (due > MAX_TIMER_MS) {
      // Too far for one timer: wake up nearer to it and look again.
      if (!closed) (timer = setTimeout(schedule, MAX_TIMER_MS)).unref();
      return;
    }
    // At least a second between rounds, whatever the token and margin say.
    later(Math.max(1000, due));
  };

  const renew = async (): Promise<void> => {
    try {
      const next = await roundWithRetry(o);
      if (closed) return wipe(next.values);
      const previous = current;
      current = next;
      if (previous !== undefined) wipe(previous.values);
      o.onRenew?.(null);
    } catch (err) {
      if (closed) throw err;
      o.onRenew?.(err as Error);
      // Keep trying while the current token is still valid.
      if (live()) later(backoffDelay(1, 1000, 5000) + 1000);
      throw err;
    }
    schedule();
  };

  const whenReady = roundWithRetry(o).then((first) => {
    if (closed) return wipe(first.values);
    current = first;
    schedule();
  });
  whenReady.catch(() => {});

  const secrets: SecretSource = {
    has: (name) => {
      const p = nameToPath(name);
      return live() && p !== undefined && current!.values.has(p);
    },
    get: (name) => {
      const p = nameToPath(name);
      if (!live() || p === undefined) return undefined;
      const v = current!.values.get(p);
      return v === undefined ? undefined : new Uint8Array(v);
    },
  };

  return {
    get ready() {
      return live();
    },
    whenReady,
    get current() {
      if (current === undefined) return undefined;
      const { evidence, runtimeData, token, tokenExpiresAt } = current;
      return { evidence, runtimeData, token, tokenExpiresAt };
    },
    secrets,
    async renewNow() {
      if (timer !== undefined) clearTimeout(timer);
      await renew();
    },
    close() {
      closed = true;
      stop.abort(SESSION_CLOSED);
      if (timer !== undefined) clearTimeout(timer);
      if (current !== undefined) wipe(current.values);
    },
  };
}

/** Attest to the broker and fetch `resources`; resolves once the first round succeeded. */
export async function attestAndFetch(o: AttestAndFetchOptions): Promise<AttestedBrokerSession> {
  const session = openBrokerSession(o);
  try {
    await session.whenReady;
  } catch (err) {
    session.close();
    throw err;
  }
  return Object.defineProperties(session, {
    evidence: { get: () => session.current?.evidence, enumerable: true },
    runtimeData: { get: () => session.current?.runtimeData, enumerable: true },
    token: { get: () => session.current?.token, enumerable: true },
    tokenExpiresAt: { get: () => session.current?.tokenExpiresAt, enumerable: true },
  }) as AttestedBrokerSession;
}
