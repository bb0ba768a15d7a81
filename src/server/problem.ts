/**
 * RFC 7807 problem responses. Every error an HTTP caller can see has a stable `type` URI derived
 * from the AttexError code, so clients branch on `type` (or `code`), never on message text.
 */
import type { FastifyReply } from 'fastify';
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
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 408: 'Request Timeout', 409: 'Conflict', 413: 'Content Too Large',
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

/**
 * The whole HTTP/1.1 response for a request Node's parser refused before any route saw it
 * (malformed HTTP, an oversized header section, a request not received in time); the
 * connection is closed after it.
 */
export function rawProblemResponse(problem: Problem): string {
  const body = JSON.stringify(problem);
  return `HTTP/1.1 ${problem.status} ${problem.title}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}
