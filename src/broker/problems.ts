/**
 * RFC 7807 problem details for the broker. Every refusal the broker sends is one of these:
 * a stable `type` URI (Trustee's `ErrorInformation` type where Trustee has one, an attex URN
 * otherwise), the HTTP status, and a `code` (attex reason code) clients and audits can match on.
 * `detail` is for people; it never carries a secret, a stack trace or a raw exception message.
 */
import { AttexError } from '../errors/index.ts';

/** Trustee's prefix for ErrorInformation types (kbs/src/error.rs; kbs/src/http/error.rs in earlier releases). */
export const TRUSTEE_ERROR_PREFIX = 'https://github.com/confidential-containers/kbs/errors/';
const ATTEX_PROBLEM_PREFIX = 'urn:attex:broker:problem:';

export interface ProblemKind {
  readonly status: 400 | 401 | 403 | 404 | 408 | 413 | 415 | 417 | 429 | 431 | 500 | 503;
  readonly type: string;
  readonly title: string;
}

const trustee = (name: string) => `${TRUSTEE_ERROR_PREFIX}${name}`;
const attex = (name: string) => `${ATTEX_PROBLEM_PREFIX}${name}`;

/** Problem catalogue keyed by problem name; documented in docs/kbs-protocol.md. */
export const PROBLEMS = {
  /** Body is not JSON, violates the schema, or has unknown fields. */
  MalformedRequest: { status: 400, type: trustee('InvalidRequest'), title: 'Malformed request' },
  /** Request.version is not the protocol version this broker speaks, or the tee is unsupported. */
  AuthRejected: { status: 401, type: trustee('FailedAuthentication'), title: 'RCAR auth rejected' },
  MissingCookie: { status: 401, type: trustee('MissingCookie'), title: 'No kbs-session-id cookie' },
  InvalidCookie: { status: 401, type: trustee('InvalidCookie'), title: 'Unknown session' },
  ExpiredCookie: { status: 401, type: trustee('ExpiredCookie'), title: 'Session or nonce expired' },
  UnAuthenticatedCookie: { status: 401, type: trustee('UnAuthenticatedCookie'), title: 'Session has not attested' },
  /** Evidence, nonce, binding or appraisal failed at /attest. */
  AttestationFailed: { status: 401, type: trustee('AttestationFailed'), title: 'Attestation failed' },
  /** No session cookie and no bearer token on a resource request. */
  TokenNotFound: { status: 401, type: trustee('TokenNotFound'), title: 'Attestation token not found' },
  /** Bearer token has a bad signature, is expired, or belongs to another session. */
  TokenVerifierError: { status: 401, type: trustee('TokenVerifierError'), title: 'Attestation token rejected' },
  PolicyDeny: { status: 403, type: trustee('PolicyDeny'), title: 'Access denied by policy' },
  InvalidRequestPath: { status: 404, type: trustee('InvalidRequestPath'), title: 'Invalid resource path' },
  ResourceNotFound: { status: 404, type: attex('ResourceNotFound'), title: 'Resource not found' },
  NotFound: { status: 404, type: attex('NotFound'), title: 'No such endpoint' },
  /** The request was not received within the server's request timeout (connection closed). */
  RequestTimeout: { status: 408, type: attex('RequestTimeout'), title: 'Request not received in time' },
  PayloadTooLarge: { status: 413, type: attex('PayloadTooLarge'), title: 'Request body too large' },
  UnsupportedMediaType: { status: 415, type: attex('UnsupportedMediaType'), title: 'Body must be application/json' },
  /** An Expect header other than 100-continue (connection closed). */
  ExpectationFailed: { status: 417, type: attex('ExpectationFailed'), title: 'Expectation failed' },
  /** Per-client request budget exceeded; refused before any work (and not audited: see docs/broker.md). */
  TooManyRequests: { status: 429, type: attex('TooManyRequests'), title: 'Too many requests' },
  /** Header section over the server's limit (connection closed). */
  HeadersTooLarge: { status: 431, type: attex('HeadersTooLarge'), title: 'Request header fields too large' },
  Internal: { status: 500, type: attex('Internal'), title: 'Internal broker error' },
  /** The broker is closing; retry against another instance. */
  ShuttingDown: { status: 503, type: attex('ShuttingDown'), title: 'Broker shutting down' },
} as const satisfies Record<string, ProblemKind>;

export type ProblemName = keyof typeof PROBLEMS;

/** A refusal on its way to the client: problem kind, attex reason code and a safe detail. */
export class BrokerProblem extends AttexError {
  readonly problem: ProblemName;
  /** Set once the refusal is in the audit log, so it is recorded exactly once. */
  audited = false;

  constructor(problem: ProblemName, code: string, detail: string, details?: Record<string, unknown>) {
    super(code, detail, details === undefined ? {} : { details });
    this.name = 'BrokerProblem';
    this.problem = problem;
  }
}

/** The wire shape: Trustee's ErrorInformation {type, detail} plus RFC 7807 title/status and our code. */
export interface ProblemBody {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: string;
}

export function problemBody(p: BrokerProblem): ProblemBody {
  const kind = PROBLEMS[p.problem];
  return { type: kind.type, title: kind.title, status: kind.status, detail: p.message, code: p.code };
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
