/**
 * RFC 7807 problem responses. Every error an HTTP caller can see has a stable `type` URI derived
 * from the AttexError code, so clients branch on `type` (or `code`), never on message text.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AttexError } from '../errors/index.ts';

export const PROBLEM_BASE = 'https://attex.dev/problems/';

export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: string;
  readonly instance?: string;
  readonly [extra: string]: unknown;
}

/** HTTP status for each error-code family; anything unknown is a 500 without internals. */
const STATUS_BY_PREFIX: ReadonlyArray<readonly [string, number]> = [
  ['auth.replay-cache-full', 503],
  ['auth.', 401],
  ['authz.', 403],
  ['request.too-large', 413],
  ['request.idempotency-conflict', 409],
  ['request.not-found', 404],
  ['request.unsupported-media-type', 415],
  ['request.timeout', 408],
  ['request.uri-too-long', 414],
  ['request.headers-too-large', 431],
  ['request.expectation-failed', 417],
  ['request.', 400],
  ['action.unknown', 404],
  ['receipt.not-found', 404],
  ['rate-limited', 429],
  ['server.overloaded', 503],
  ['server.not-ready', 503],
  ['server.shutting-down', 503],
  ['capability.', 422],
  ['sandbox.', 422],
];

export function statusFor(code: string): number {
  for (const [prefix, status] of STATUS_BY_PREFIX) if (code === prefix || code.startsWith(prefix)) return status;
  return 500;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 408: 'Request Timeout', 409: 'Conflict', 413: 'Content Too Large', 417: 'Expectation Failed',
  414: 'URI Too Long', 415: 'Unsupported Media Type', 422: 'Action Failed', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large',
  500: 'Internal Server Error', 503: 'Service Unavailable',
};

export function problemFrom(err: unknown, instance?: string): Problem {
  if (err instanceof AttexError) {
    const status = statusFor(err.code);
    // 500s never echo internal messages: they may carry paths or state.
    const detail = status === 500 ? 'internal error; see the executor log for this request id' : err.message;
    return { type: PROBLEM_BASE + err.code, title: TITLES[status] ?? 'Error', status, detail, code: err.code, ...(instance ? { instance } : {}) };
  }
  return { type: PROBLEM_BASE + 'internal', title: TITLES[500]!, status: 500, detail: 'internal error; see the executor log for this request id', code: 'internal', ...(instance ? { instance } : {}) };
}

export function sendProblem(reply: FastifyReply, problem: Problem, retryAfterSeconds?: number): FastifyReply {
  if (retryAfterSeconds !== undefined) reply.header('retry-after', String(retryAfterSeconds));
  return reply.code(problem.status).type('application/problem+json').send(problem);
}

/** What Node's HTTP parser refused, before any route saw the request. */
export type ClientErrorKind = 'timeout' | 'headers-too-large' | 'malformed-http';

/**
 * A fastify `clientErrorHandler` (shared by the executor and the broker) that answers those
 * refusals with the problem `problemFor` names, as a whole raw HTTP/1.1 response, and closes
 * the connection. A reset or already closed connection gets nothing.
 */
export function clientErrorResponder(problemFor: (kind: ClientErrorKind) => Problem, endWhenIdle?: (socket: Duplex) => void): (err: NodeJS.ErrnoException, socket: Duplex) => void {
  return (err, socket) => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const problem = problemFor(err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'timeout' : err.code === 'HPE_HEADER_OVERFLOW' ? 'headers-too-large' : 'malformed-http');
    const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
    // The response being written is this very request's when its body is what timed out.
    const own = inFlight !== null && inFlight !== undefined && !inFlight.headersSent && inFlight.req !== undefined && !inFlight.req.complete;
    if (inFlight && !own) {
      // Requests before this one on the connection are still being answered: a raw answer now
      // would reach the client as theirs (they may well have run).
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
        // A request stalled behind them is counted in progress and never completes: waiting for
        // the connection to go idle would hold it open for good. Cut it.
        socket.destroy();
        return;
      }
      // A malformed request was never admitted: let the earlier answers go out, then close;
      // nothing after it is read.
      if (endWhenIdle) return endWhenIdle(socket);
      inFlight.shouldKeepAlive = false;
      inFlight.once('close', () => socket.destroy());
      return;
    }
    const body = JSON.stringify(problem);
    if (socket.writable) {
      socket.end(`HTTP/1.1 ${problem.status} ${problem.title}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    }
    socket.destroy();
  };
}

/**
 * Node answers an `Expect` other than `100-continue` with a bare 417 and no body: answer with
 * `problemFor`'s problem instead (shared by the executor and the broker), closing the connection.
 */
export function answerUnmetExpectations(server: Server, problemFor: (req: IncomingMessage) => { readonly status: number }): void {
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const problem = problemFor(req);
    const body = JSON.stringify(problem);
    res.writeHead(problem.status, { 'content-type': 'application/problem+json', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
  });
}

/**
 * Once `app.close()` starts, a request that still arrives on an open connection is answered by
 * `refuse` (with `Connection: close`) instead of being routed; fastify's own closing answer has
 * no problem body, so `return503OnClosing` is off where this is used.
 */
export function refuseWhileClosing(app: FastifyInstance, refuse: (req: FastifyRequest, reply: FastifyReply) => void): void {
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onRequest', (req, reply, done) => {
    if (!closing) return done();
    reply.header('connection', 'close');
    refuse(req, reply);
  });
}
