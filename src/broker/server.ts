/**
 * The key broker's HTTP server (fastify): Trustee KBS RCAR v0.4.0 endpoints, the token JWKS,
 * strict schemas (unknown members refused, no coercion), per-route body limits, problem+json
 * for every refusal, and no stack traces or internal messages to clients. Logs go through pino
 * with credentials redacted; secret values never reach a log line.
 */
import type { Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import pino, { type Logger } from 'pino';
import { AttexError } from '../errors/index.ts';
import { CallerRateLimiter, type RateLimit } from '../server/admission.ts';
import { trackConnections } from '../server/connections.ts';
import { answerUnmetExpectations, clientErrorResponder, refuseWhileClosing } from '../server/problem.ts';
import { jsonNestsDeeperThan } from '../util/index.ts';
import type { AuditEvent, AuditLog } from './audit.ts';
import { handleAttest, handleAuth, handleResource, sessionFromCookie, type BrokerContext } from './handlers.ts';
import type { ResourcePolicy } from './policy/index.ts';
import { BrokerProblem, PROBLEMS, PROBLEM_CONTENT_TYPE, problemBody } from './problems.ts';
import {
  KBS_SESSION_COOKIE,
  LIMITS,
  attestationSchema,
  requestSchema,
  resourceParamsSchema,
  type KbsAttestation,
  type KbsRequest,
} from './protocol.ts';
import { SessionTable } from './session.ts';
import type { SecretStore } from './store/index.ts';
import { JWKS_PATH, jwks, type TokenKey } from './token.ts';
import type { EvidenceVerifier } from './verifier.ts';

export interface BrokerServerOptions {
  readonly verifier: EvidenceVerifier;
  readonly resourcePolicy: ResourcePolicy;
  readonly store: SecretStore;
  readonly tokenKey: TokenKey;
  readonly audit: AuditLog;
  /** The broker's clock (tests inject one to expire nonces and tokens). */
  readonly clock?: () => Date;
  /** A pino logger; by default logs go to stderr at `info`. */
  readonly logger?: Logger;
  readonly issuer?: string;
  readonly build?: string;
  /** Lifetime of an unattested session and its nonce (Trustee default: 5 minutes). */
  readonly sessionTtlSeconds?: number;
  /** Lifetime of an attestation token and the attested session. */
  readonly tokenTtlSeconds?: number;
  /** Bounds of the session table (default 100,000 sessions and 256 MiB; see SessionTable). */
  readonly maxSessions?: number;
  readonly maxSessionBytes?: number;
  /** Per-client-address request budget (default 50/s, burst 100). Bounds audit-log growth from refusals. */
  readonly rateLimit?: RateLimit;
  /** Serve HTTPS with this certificate chain and key (PEM); plain HTTP without it. */
  readonly tls?: BrokerTls;
}

/** The broker's TLS certificate chain and private key, PEM. */
export interface BrokerTls {
  readonly cert: string;
  readonly key: string;
}

/** A usable TLS context from `tls`, or a `broker.tls` error that says what is wrong (never the key). */
export function checkBrokerTls(tls: BrokerTls): void {
  try {
    createSecureContext({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' });
  } catch (err) {
    const reason = (err as { code?: string }).code ?? 'unreadable';
    throw new AttexError('broker.tls', `the TLS certificate and key cannot be used together (${reason}): both must be PEM, the key unencrypted and matching the first certificate`);
  }
}

export interface BrokerServer {
  readonly app: FastifyInstance;
  readonly sessions: SessionTable;
  /** Listen on loopback by default; resolves to the base URL. */
  listen(opts?: { port?: number; host?: string }): Promise<string>;
  close(): Promise<void>;
}

/** How long close() lets requests in flight finish before it cuts the connections left. */
const CLOSE_GRACE_MS = 2_000;
/** How long close() then waits for the handlers of cut requests (verification, audit writes). */
const WORK_GRACE_MS = 30_000;

/** KBS bodies are shallow JSON (evidence is a few levels deep); far deeper is not a KBS body. */
const MAX_JSON_DEPTH = 64;

/** Paths and headers that can carry credentials or secrets: always censored in logs. */
export const LOG_REDACT_PATHS = [
  'req.headers.cookie',
  'req.headers.authorization',
  'res.headers["set-cookie"]',
  'headers.cookie',
  'headers.authorization',
  'token',
  'value',
  'plaintext',
  'secret',
  '*.token',
  '*.value',
  '*.plaintext',
  '*.secret',
];

export function createBrokerLogger(destination?: pino.DestinationStream, level = 'info'): Logger {
  const opts = { level, redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' } };
  return destination === undefined ? pino(opts, pino.destination(2)) : pino(opts, destination);
}

/** The kbs-session-id cookie: undefined when absent, null when malformed or repeated. */
export function readSessionCookie(header: string | undefined): string | undefined | null {
  if (header === undefined) return undefined;
  let found: string | undefined | null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== KBS_SESSION_COOKIE) continue;
    if (found !== undefined) return null;
    const value = part.slice(eq + 1).trim();
    found = /^[A-Za-z0-9_-]{16,128}$/.test(value) ? value : null;
  }
  return found;
}

function setCookie(id: string, maxAgeSeconds: number): string {
  return `${KBS_SESSION_COOKIE}=${id}; Path=/kbs/v0; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}; HttpOnly; SameSite=Strict`;
}

/** Map framework errors (schema, JSON, size, media type) to problems. */
function problemForFrameworkError(err: FastifyError): BrokerProblem {
  if (err.validation !== undefined) {
    const first = err.validation[0];
    const where = first === undefined ? '' : `${err.validationContext ?? 'body'}${first.instancePath}`;
    return new BrokerProblem('MalformedRequest', 'broker.schema', `request does not match the KBS schema at ${where || '(root)'}: ${first?.message ?? 'invalid'}`);
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new BrokerProblem('PayloadTooLarge', 'broker.body-too-large', 'request body too large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new BrokerProblem('UnsupportedMediaType', 'broker.media-type', 'request body must be application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new BrokerProblem('MalformedRequest', 'broker.json', 'request body is not valid JSON');
    default:
      if ((err as unknown) instanceof AttexError && err.code === 'broker.audit') {
        return new BrokerProblem('Internal', 'broker.audit', 'the audit log is unavailable; nothing was released');
      }
      if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
        return new BrokerProblem('MalformedRequest', 'broker.request', 'malformed request');
      }
      return new BrokerProblem('Internal', 'broker.internal', 'internal broker error');
  }
}

function eventFor(req: FastifyRequest): AuditEvent['event'] | undefined {
  let url: string | undefined;
  try {
    url = req.routeOptions.url; // requests refused before routing have no route options
  } catch {
    url = undefined;
  }
  url ??= req.url.split('?')[0]!;
  if (url.startsWith('/kbs/v0/resource')) return 'resource';
  if (url === '/kbs/v0/attest') return 'attest';
  if (url === '/kbs/v0/auth') return 'auth';
  return undefined;
}

export async function createBrokerServer(opts: BrokerServerOptions): Promise<BrokerServer> {
  const logger = opts.logger ?? createBrokerLogger();
  const sessions = new SessionTable({ ...(opts.maxSessions === undefined ? {} : { maxSessions: opts.maxSessions }), ...(opts.maxSessionBytes === undefined ? {} : { maxBytes: opts.maxSessionBytes }) });
  const ctx: BrokerContext = {
    verifier: opts.verifier,
    resourcePolicy: opts.resourcePolicy,
    store: opts.store,
    tokenKey: opts.tokenKey,
    audit: opts.audit,
    sessions,
    clock: opts.clock ?? (() => new Date()),
    issuer: opts.issuer ?? 'attex-broker',
    build: opts.build ?? 'attex-broker/0.1.0',
    sessionTtlSeconds: opts.sessionTtlSeconds ?? 300,
    tokenTtlSeconds: opts.tokenTtlSeconds ?? 900,
  };

  if (opts.tls) checkBrokerTls(opts.tls);
  const app = Fastify({
    // A handshake gets 10 s (Node's default is 120 s; requestTimeout starts only after it).
    // A request without Host is refused below with a problem body, not Node's bare 400.
    // Request deadlines are checked every 5 s, and headers get 20 s: with Node's defaults (a 30 s
    // check, 60 s for headers) a stalled request was cut only after a minute, not the 30 s below.
    ...(opts.tls
      ? { https: { cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' as const, handshakeTimeout: 10_000, requireHostHeader: false, connectionsCheckingInterval: 5_000, headersTimeout: 20_000 } }
      : { http: { requireHostHeader: false, connectionsCheckingInterval: 5_000, headersTimeout: 20_000 } }),
    loggerInstance: logger,
    bodyLimit: LIMITS.attestBodyBytes,
    // Resource path segments are up to 128 characters (src/broker/paths.ts).
    routerOptions: { maxParamLength: 128 },
    exposeHeadRoutes: false,
    // While closing, requests on open connections get a problem (below), not fastify's own 503.
    return503OnClosing: false,
    requestTimeout: 30_000,
    // Refused before any route: answered as problems too, through the error handler (audited).
    frameworkErrors: (err, _req, reply) => {
      const problem = err.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? new BrokerProblem('InvalidRequestPath', 'broker.resource-path', 'a resource path segment is longer than 128 characters')
        : new BrokerProblem('MalformedRequest', 'broker.request', 'the path is not valid percent-encoded UTF-8');
      void refuse(problem, reply.request, reply);
    },
    clientErrorHandler: clientErrorResponder((kind) => ({
      ...problemBody(
        kind === 'timeout'
          ? new BrokerProblem('RequestTimeout', 'broker.timeout', 'the request was not received in time')
          : kind === 'headers-too-large'
            ? new BrokerProblem('HeadersTooLarge', 'broker.headers-too-large', 'the header section exceeds the server limit (16 KiB)')
            : new BrokerProblem('MalformedRequest', 'broker.request', 'the request is not valid HTTP/1.1'),
      ),
    }), (socket) => connections.endWhenIdle(socket as Socket)),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
  });

  // Handlers still at work (verifying, auditing): close() waits for them.
  const work = new Set<Promise<unknown>>();
  function tracked<T>(p: Promise<T>): Promise<T> {
    work.add(p);
    void p.then(() => work.delete(p), () => work.delete(p));
    return p;
  }
  // While closing, each response ends its connection, so a keep-alive client does not hold
  // the shutdown until the cut.
  const connections = trackConnections(app as unknown as FastifyInstance);

  // What Node would answer with a bare status and no body: an Expect other than 100-continue
  // (417), and an HTTP/1.1 request without Host (400, RFC 9112 §3.2). Neither is audited.
  answerUnmetExpectations(app.server, () => problemBody(new BrokerProblem('ExpectationFailed', 'broker.expectation-failed', 'only "Expect: 100-continue" is supported')));
  app.addHook('onRequest', async (req, reply) => {
    if (req.headers.host !== undefined || req.raw.httpVersion !== '1.1') return;
    const body = problemBody(new BrokerProblem('MalformedRequest', 'broker.request', 'an HTTP/1.1 request needs a Host header'));
    return reply.code(400).type(PROBLEM_CONTENT_TYPE).send(body);
  });

  // Refused before parsing, verification or auditing: a flood cannot grow the audit log or burn CPU.
  const limiter = new CallerRateLimiter(opts.rateLimit ?? { ratePerSecond: 50, burst: 100 });
  app.addHook('onRequest', async (req, reply) => {
    const wait = limiter.take(req.ip, ctx.clock().getTime());
    if (wait === 0) return;
    const body = problemBody(new BrokerProblem('TooManyRequests', 'broker.rate-limited', `too many requests from this address; retry in ${wait}s`));
    return reply.code(429).header('retry-after', String(wait)).type(PROBLEM_CONTENT_TYPE).send(body);
  });

  refuseWhileClosing(app as unknown as FastifyInstance, (_req, reply) => {
    const body = problemBody(new BrokerProblem('ShuttingDown', 'broker.shutting-down', 'the broker is shutting down; retry on another instance'));
    void reply.code(503).header('retry-after', '1').type(PROBLEM_CONTENT_TYPE).send(body);
  });

  // JSON only: without this fastify would parse text/plain bodies and fail them on the schema.
  app.removeContentTypeParser('text/plain');
  // Nesting is bounded before the body is parsed: parsing and the prototype-poisoning scan of a
  // megabyte of `[[[[…` cost most of a second of the event loop, for any client.
  const defaultJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (jsonNestsDeeperThan(body as string, MAX_JSON_DEPTH)) {
      done(new BrokerProblem('MalformedRequest', 'broker.json', `request body nests deeper than ${MAX_JSON_DEPTH} levels`), undefined);
      return;
    }
    defaultJson(req, body as string, done);
  });

  app.setErrorHandler(async (err: FastifyError | BrokerProblem, req, reply) => {
    const problem = err instanceof BrokerProblem ? err : problemForFrameworkError(err as FastifyError);
    return refuse(problem, req, reply, err);
  });

  /** Every refusal: logged if internal, audited once, sent as problem+json. */
  function refuse(problem: BrokerProblem, req: FastifyRequest, reply: FastifyReply, err: unknown = problem) {
    return tracked(refuseNow(problem, req, reply, err));
  }
  async function refuseNow(problem: BrokerProblem, req: FastifyRequest, reply: FastifyReply, err: unknown) {
    if (problem.problem === 'Internal') {
      // Only the error's code reaches the log: messages of deep failures may quote inputs.
      req.log.error({ code: (err as { code?: string }).code ?? 'unknown', name: (err as Error).name }, 'broker request failed');
    }
    const event = eventFor(req);
    if (!problem.audited && event !== undefined) {
      try {
        await ctx.audit.record({ event, decision: 'deny', reason: problem.code, status: PROBLEMS[problem.problem].status, problemType: PROBLEMS[problem.problem].type }, ctx.clock());
        problem.audited = true;
      } catch {
        req.log.error({ code: 'broker.audit' }, 'audit append failed for a denial');
      }
    }
    const body = problemBody(problem);
    return reply.code(body.status).type(PROBLEM_CONTENT_TYPE).send(body);
  }

  app.setNotFoundHandler(async (_req, reply) => {
    const body = problemBody(new BrokerProblem('NotFound', 'broker.not-found', 'no such endpoint'));
    return reply.code(404).type(PROBLEM_CONTENT_TYPE).send(body);
  });

  app.post<{ Body: KbsRequest }>('/kbs/v0/auth', { schema: { body: requestSchema }, bodyLimit: LIMITS.authBodyBytes }, async (req, reply) => {
    const { challenge, session } = handleAuth(ctx, req.body);
    reply.header('set-cookie', setCookie(session.id, ctx.sessionTtlSeconds));
    return challenge;
  });

  // The session cookie is checked before the body is even read: a client without a live session
  // costs no parsing. (handleAttest checks it again, with the session's state.)
  const attestPreParsing = async (req: FastifyRequest) => {
    sessionFromCookie(ctx, readSessionCookie(req.headers.cookie));
  };
  app.post<{ Body: KbsAttestation }>('/kbs/v0/attest', { schema: { body: attestationSchema }, preParsing: attestPreParsing }, async (req, reply) => {
    const cookie = readSessionCookie(req.headers.cookie);
    const { token, session } = await tracked(handleAttest(ctx, cookie, req.body));
    reply.header('set-cookie', setCookie(session.id, (session.expiresAt - ctx.clock().getTime()) / 1000));
    return { token };
  });

  app.get<{ Params: { repository: string; type: string; tag: string } }>(
    '/kbs/v0/resource/:repository/:type/:tag',
    { schema: { params: resourceParamsSchema } },
    async (req, reply) => {
      const jwe = await tracked(handleResource(ctx, req.params, readSessionCookie(req.headers.cookie), req.headers.authorization));
      reply.header('cache-control', 'no-store');
      return jwe;
    },
  );

  app.get(JWKS_PATH, async () => jwks(opts.tokenKey));

  await app.ready();
  return {
    app: app as unknown as FastifyInstance,
    sessions,
    async listen(l = {}) {
      return app.listen({ port: l.port ?? 0, host: l.host ?? '127.0.0.1' });
    },
    async close() {
      connections.beginClose();
      // Requests in flight get CLOSE_GRACE_MS to finish; connections still open then (idle,
      // never used, or in a TLS handshake, which the HTTP server does not track) are cut, so a
      // client cannot hold the broker's shutdown.
      const cut = setTimeout(() => connections.destroyAll(), CLOSE_GRACE_MS);
      try {
        await app.close();
      } finally {
        clearTimeout(cut);
      }
      // A cut request's handler may still be verifying or auditing: the owner closes the audit
      // log and unlocks the state directory only after it (or WORK_GRACE_MS) is over.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...work]), new Promise<void>((resolve) => (timer = setTimeout(resolve, WORK_GRACE_MS)))]);
      clearTimeout(timer);
    },
  };
}
