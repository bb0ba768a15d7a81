/**
 * The executor's HTTP surface (fastify). Authentication (RFC 9421 signatures, or bearer tokens
 * in simulated development mode only), authorization per caller and action, admission control,
 * and problem+json errors live here; running actions, receipts and the log live behind
 * ExecutorService.
 */
import { timingSafeEqual, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import type { Logger } from 'pino';
import { AttexError } from '../errors/index.ts';
import { DEFAULT_MAX_SKEW_SECONDS, ReplayCache, type VerifiedHeaders, type VerifiedRequestSignature, verifyRequestBody, verifyRequestHeaders } from '../httpsig/index.ts';
import { CallerRateLimiter, DispatchQueue, type RateLimit } from './admission.ts';
import { createMetrics, type ExecutorMetrics } from './metrics.ts';
import { type ConnectionTracker, trackConnections } from './connections.ts';
import { answerUnmetExpectations, clientErrorResponder, problemFrom, refuseWhileClosing, sendProblem } from './problem.ts';
import { routeSchemas, OPENAPI_INFO } from './schemas.ts';
import type { Caller, DispatchResult, ExecutorService } from './service.ts';

export interface CallerCredential {
  readonly caller: Caller;
  readonly keyId: string;
  readonly publicKey: KeyObject;
}

export interface AppOptions {
  readonly service: ExecutorService;
  readonly callers: readonly CallerCredential[];
  /** Bearer tokens for local development; refused unless `allowBearer` (simulated mode only). */
  readonly bearerTokens?: ReadonlyArray<{ readonly token: string; readonly caller: Caller }>;
  readonly allowBearer?: boolean;
  readonly bodyLimitBytes?: number;
  /** Time a client has to send a whole request; slower connections are closed (default 30 s). */
  readonly requestTimeoutMs?: number;
  /** Open connections at once; a connection beyond it is closed at once (Node's server.maxConnections). */
  readonly maxConnections?: number;
  /** Open connections one address (an IPv6 /64) may hold; more are closed at once. Default: no cap. */
  readonly maxConnectionsPerAddress?: number;
  readonly concurrency: number;
  readonly maxQueued?: number;
  readonly rateLimit?: RateLimit;
  readonly clock?: () => Date;
  readonly logger?: Logger | false;
  /**
   * Signatures created before this (seconds since the epoch) are refused; until then dispatch
   * answers 503 `server.not-ready`. Default: when the app is created (the replay cache knows
   * nothing older). See replay-horizon.ts.
   */
  readonly replayNotBefore?: number;
}

const ACTION_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** Nonces remembered at most (~100 MB). */
const REPLAY_CACHE_ENTRIES = 1_000_000;
const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{1,128}$/;
/**
 * The action sees the body decoded as UTF-8 while the receipt digests its bytes: invalid UTF-8
 * (which a lenient decoder would turn into U+FFFD) is refused so the two always agree, and a
 * byte order mark is kept, so JSON.parse refuses it as the action would.
 */
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export interface ExecutorApp {
  readonly app: FastifyInstance;
  readonly metrics: ExecutorMetrics;
  readonly queue: DispatchQueue;
  /** For shutdown: end idle connections at once, cut the rest when the grace period is over. */
  readonly connections: ConnectionTracker;
}

export async function createExecutorApp(opts: AppOptions): Promise<ExecutorApp> {
  const clock = opts.clock ?? (() => new Date());
  const metrics = createMetrics();
  const queue = new DispatchQueue({ concurrency: opts.concurrency, maxQueued: opts.maxQueued ?? opts.concurrency * 64 });
  // A caller within its rate limit never fills its share of the replay cache: a nonce is kept
  // only while its signature stays fresh (300 s after it was created).
  const rate = opts.rateLimit ?? { ratePerSecond: 200, burst: 400 };
  const replay = new ReplayCache(undefined, REPLAY_CACHE_ENTRIES, Math.max(REPLAY_CACHE_ENTRIES / 4, Math.ceil(rate.ratePerSecond * DEFAULT_MAX_SKEW_SECONDS * 1.1) + rate.burst));
  const limiter = new CallerRateLimiter(rate);
  // Requests signed before the replay cache existed are refused (see verifyRequestHeaders' notBefore).
  const signaturesFrom = opts.replayNotBefore ?? Math.floor(clock().getTime() / 1000);
  const byKeyId = new Map(opts.callers.map((c) => [c.keyId, c]));
  const bearer = opts.allowBearer ? (opts.bearerTokens ?? []) : [];

  const requestTimeout = opts.requestTimeoutMs ?? 30_000;
  const app: FastifyInstance = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    bodyLimit: opts.bodyLimitBytes ?? 1024 * 1024,
    // Slow or stalled clients (slowloris) cannot hold connections open: node checks every
    // connection's header and request deadlines at this interval and closes late ones with 408.
    serverFactory: (handler) =>
      http.createServer(
        {
          requestTimeout,
          headersTimeout: Math.min(requestTimeout, 20_000),
          connectionsCheckingInterval: Math.max(250, Math.min(1000, Math.floor(requestTimeout / 4))),
          keepAliveTimeout: 10_000,
          // A request without Host is refused below with a problem body, not Node's bare 400.
          requireHostHeader: false,
        },
        handler,
      ),
    connectionTimeout: Math.max(requestTimeout, 60_000),
    requestTimeout,
    keepAliveTimeout: 10_000,
    // While closing, requests still arriving on open connections get a problem (below), not
    // fastify's own 503 body.
    return503OnClosing: false,
    // Path parameters are checked by the handlers, after authentication; the default cap (100)
    // would refuse a long action name before the caller is known. The header-size limit bounds them.
    routerOptions: { maxParamLength: 16 * 1024 },
    frameworkErrors: (err, _req, reply) => {
      const problem = problemFrom(
        err.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? new AttexError('request.uri-too-long', 'a path segment is too long')
          : err.code === 'FST_ERR_BAD_URL'
            ? new AttexError('request.malformed-url', 'the path is not valid percent-encoded UTF-8')
            : new AttexError('request.invalid', 'the request could not be routed'),
      );
      metrics.rejected.inc({ reason: problem.code });
      void sendProblem(reply, problem);
    },
    clientErrorHandler: clientErrorResponder((kind) => {
      const problem = problemFrom(
        kind === 'timeout'
          ? new AttexError('request.timeout', `the request was not received within ${requestTimeout} ms`)
          : kind === 'headers-too-large'
            ? new AttexError('request.headers-too-large', 'the header section exceeds the server limit (16 KiB)')
            : new AttexError('request.malformed-http', 'the request is not valid HTTP/1.1'),
      );
      metrics.rejected.inc({ reason: problem.code });
      return problem;
    }, (socket) => connections.endWhenIdle(socket as Socket)),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  }) as unknown as FastifyInstance;

  // Only authenticated requests have their bodies read (each up to bodyLimitBytes): bounding the
  // connections bounds that memory (maxConnections × bodyLimitBytes).
  if (opts.maxConnections !== undefined) app.server.maxConnections = opts.maxConnections;

  await app.register(swagger, { openapi: { openapi: '3.1.0', info: OPENAPI_INFO } });

  // Keep the exact body bytes: the content digest and the receipt's input digest cover them.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, req, reply) => {
    const e = err as { code?: string; statusCode?: number; message?: string };
    let problemErr: unknown = err;
    if (!(err instanceof AttexError)) {
      if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') problemErr = new AttexError('request.too-large', `request body exceeds ${opts.bodyLimitBytes ?? 1048576} bytes`);
      else if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') problemErr = new AttexError('request.unsupported-media-type', 'send application/json');
      else if (e.statusCode === 400) problemErr = new AttexError('request.invalid', e.message ?? 'invalid request');
      else req.log.error({ err }, 'unhandled error');
    }
    const problem = problemFrom(problemErr, req.url);
    metrics.rejected.inc({ reason: problem.code });
    const retryAfter = problem.status === 503 ? 1 : undefined;
    return sendProblem(reply, problem, retryAfter);
  });
  app.setNotFoundHandler((req, reply) => sendProblem(reply, problemFrom(new AttexError('request.not-found', 'no such route'), req.url)));

  // What Node would answer with a bare status and no body: an Expect other than 100-continue
  // (417), and an HTTP/1.1 request without Host (400, RFC 9112 §3.2).
  answerUnmetExpectations(app.server, (req) => {
    const problem = problemFrom(new AttexError('request.expectation-failed', 'only "Expect: 100-continue" is supported'), req.url);
    metrics.rejected.inc({ reason: problem.code });
    return problem;
  });
  const connections = trackConnections(app, opts.maxConnectionsPerAddress === undefined ? {} : { maxPerAddress: opts.maxConnectionsPerAddress });
  app.addHook('onRequest', (req, _reply, done) => {
    if (req.headers.host === undefined && req.raw.httpVersion === '1.1') done(new AttexError('request.missing-host', 'an HTTP/1.1 request needs a Host header'));
    else done();
  });
  refuseWhileClosing(app, (req, reply) => {
    metrics.rejected.inc({ reason: 'server.shutting-down' });
    void sendProblem(reply, problemFrom(new AttexError('server.shutting-down', 'the executor is shutting down; retry on another instance'), req.url), 1);
  });

  app.addHook('onResponse', async (req, reply) => {
    metrics.requestSeconds.observe({ route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  // Authentication in two steps. The headers (bearer token, or the request signature, which
  // covers the Content-Digest header rather than the body) are checked before the body is read,
  // so an unauthenticated client cannot make the server buffer bodies; the body's match with the
  // signed digest, and the nonce, once it is in.
  type HeadersAuthenticated = { caller: Caller; method: 'bearer-dev' } | { caller: Caller; method: 'http-signature'; verified: VerifiedHeaders };
  const authenticated = new WeakMap<FastifyRequest, HeadersAuthenticated>();

  function authenticateHeaders(req: FastifyRequest): HeadersAuthenticated {
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ')) {
      const presented = Buffer.from(auth.slice(7));
      const match = bearer.find((b) => b.token.length === presented.length && timingSafeEqual(Buffer.from(b.token), presented));
      if (!match) throw new AttexError('auth.bad-token', opts.allowBearer ? 'unknown bearer token' : 'bearer tokens are disabled outside simulated development mode; sign requests (RFC 9421)');
      return { caller: match.caller, method: 'bearer-dev' };
    }
    const verified = verifyRequestHeaders(
      { method: req.method, url: req.url, headers: req.headers },
      { lookupKey: (id) => byKeyId.get(id)?.publicKey, now: clock(), notBefore: signaturesFrom },
    );
    return { caller: byKeyId.get(verified.ours.keyId)!.caller, method: 'http-signature', verified };
  }

  function authenticate(req: FastifyRequest, body: Uint8Array): { caller: Caller; signature?: VerifiedRequestSignature; method: 'http-signature' | 'bearer-dev' } {
    const headers = authenticated.get(req);
    if (!headers) throw new AttexError('auth.unsigned', 'the request was not authenticated'); // not reached: the route's onRequest hook sets it
    if (headers.method === 'bearer-dev') return headers;
    return { caller: headers.caller, signature: verifyRequestBody(headers.verified, body, replay), method: 'http-signature' };
  }

  const dispatchRoute = {
    schema: routeSchemas.dispatch,
    onRequest: (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
      // Until the horizon, a fresh signature cannot be told from one the process before this
      // one accepted: nothing is accepted, and the caller learns when to sign again.
      const wait = signaturesFrom - Math.floor(clock().getTime() / 1000);
      if (wait > 0) {
        metrics.rejected.inc({ reason: 'server.not-ready' });
        void sendProblem(reply, problemFrom(new AttexError('server.not-ready', `this executor accepts request signatures created from ${new Date(signaturesFrom * 1000).toISOString()} on (the process before it may have accepted older ones); sign the request again in ${wait} s`), req.url), wait);
        return;
      }
      try {
        authenticated.set(req, authenticateHeaders(req));
        done();
      } catch (err) {
        done(err as Error);
      }
    },
  };
  app.post('/v1/actions/:name', dispatchRoute, async (req, reply) => {
    const { name } = req.params as { name: string };
    const body = req.body instanceof Buffer ? new Uint8Array(req.body) : new Uint8Array();
    const { caller, signature, method } = authenticate(req, body);
    if (!ACTION_NAME.test(name) || !opts.service.hasAction(name)) throw new AttexError('action.unknown', `no action named '${name.slice(0, 64)}' is deployed`);
    if (!caller.actions.includes('*') && !caller.actions.includes(name)) throw new AttexError('authz.action-denied', `caller '${caller.id}' may not run '${name}'`);
    const idempotencyKey = req.headers['idempotency-key'];
    if (idempotencyKey !== undefined && (typeof idempotencyKey !== 'string' || !IDEMPOTENCY_KEY.test(idempotencyKey))) {
      throw new AttexError('request.bad-idempotency-key', 'Idempotency-Key must be 1-128 characters of A-Z a-z 0-9 . _ : -');
    }
    // The key decides whether the request runs or returns an earlier result: unsigned, anyone on
    // the path could strip or change it and make a retry run twice.
    if (idempotencyKey !== undefined && signature && !signature.components.includes('idempotency-key')) {
      throw new AttexError('auth.incomplete-coverage', 'a request with an Idempotency-Key must cover the idempotency-key header in its signature');
    }
    let input: unknown;
    try {
      input = JSON.parse(STRICT_UTF8.decode(body));
    } catch {
      throw new AttexError('request.malformed-json', 'the request body is not valid JSON in UTF-8');
    }
    const wait = limiter.take(caller.id, clock().getTime());
    if (wait > 0) {
      metrics.rejected.inc({ reason: 'rate-limited' });
      return sendProblem(reply, problemFrom(new AttexError('rate-limited', `caller '${caller.id}' is over its rate limit`), req.url), wait);
    }
    if (!opts.service.readiness().ready) throw new AttexError('server.not-ready', 'the executor is not attested and ready yet');
    const result = await opts.service.dispatch({
      action: name, inputBytes: body, input, caller, signature, authMethod: method, idempotencyKey,
      admit: (task) => queue.run(task),
    });
    // A replay ran nothing: it is not counted again.
    if (!result.replayed) metrics.actions.inc({ action: name, outcome: result.outcome });
    // A failed action still has a receipt: 200 for success, 422 when the action failed in the sandbox.
    return reply
      .code(result.outcome === 'ok' ? 200 : result.error?.code === 'sandbox.worker-crashed' ? 500 : 422)
      .type('application/json; charset=utf-8')
      .send(dispatchResponseBody(result));
  });

  app.get('/v1/receipts/:id', { schema: routeSchemas.receipt }, async (req) => {
    const { id } = req.params as { id: string };
    const bundle = /^[A-Za-z0-9-]{8,64}$/.test(id) ? await opts.service.receiptBundle(id) : undefined;
    if (bundle === undefined) throw new AttexError('receipt.not-found', `no receipt for invocation '${id.slice(0, 64)}'`);
    return bundle;
  });

  app.get('/v1/attestation', { schema: routeSchemas.attestation }, async () => opts.service.attestationRecord());

  app.get('/v1/log/checkpoint', { schema: routeSchemas.checkpoint }, async (_req, reply) =>
    reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(opts.service.logCheckpoint()),
  );
  app.get('/v1/log/tile/*', { schema: routeSchemas.tile }, async (req, reply) => {
    const rest = (req.params as { '*': string })['*'];
    if (!/^(entries|\d{1,2})(\/x\d{3})*\/\d{3}(\.p\/\d{1,3})?$/.test(rest)) throw new AttexError('request.not-found', 'not a tlog-tiles path');
    const bytes = await opts.service.logTile(`tile/${rest}`);
    if (!bytes) throw new AttexError('request.not-found', 'no such tile');
    // Full tiles never change; partial ones may be superseded.
    reply.header('cache-control', rest.includes('.p/') ? 'no-store' : 'public, max-age=31536000, immutable');
    return reply.type('application/octet-stream').send(Buffer.from(bytes));
  });

  app.get('/healthz', { schema: routeSchemas.health }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: routeSchemas.ready }, async (_req, reply) => {
    const r = opts.service.readiness();
    return reply.code(r.ready ? 200 : 503).send({ ready: r.ready, checks: r.checks });
  });
  app.get('/metrics', { schema: routeSchemas.metrics }, async (_req, reply) => {
    const pool = opts.service.poolStats();
    metrics.poolBusy.set(pool.running);
    metrics.queueDepth.set(queue.stats.queued + pool.queued);
    metrics.ledgerSize.set(opts.service.ledgerSize());
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  return { app, metrics, queue, connections };
}

/**
 * The dispatch response, serialized natively: the schema serializer escapes the long base64
 * receipt and proof strings character by character in JS. DispatchResult holds exactly the
 * schema's members, in its order. The proof's checkpoint is signed with lines starting with
 * U+2014; written as `\u2014`, it is the same JSON value, and the body stays one-byte in V8
 * (unless the action's own output has non-ASCII text), which saves 20-30 µs of event-loop time
 * per response in measuring, encoding and writing it (docs/executor.md).
 */
export function dispatchResponseBody(result: DispatchResult): string {
  return JSON.stringify({ ...result, proof: JSON.rawJSON(asciiJsonString(result.proof)) });
}

/** `value` as a JSON string literal with every character outside ASCII escaped. */
function asciiJsonString(value: string): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
