/**
 * The client's HTTP calls (undici): JSON in and out, bounded response size, and a typed error
 * that says whether retrying could help (transport failures and 5xx) or not (the broker
 * refused: 4xx problem+json, whose `code` is preserved).
 */
import { X509Certificate } from 'node:crypto';
import { Agent, request, type Dispatcher } from 'undici';
import { AttexError } from '../../errors/index.ts';
import { readCapped } from '../../util/index.ts';

export const MAX_RESPONSE_BYTES = 2 * 1024 * 1024;

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
/** Node's and OpenSSL's codes for a peer certificate that does not verify. */
const TLS_TRUST_FAILURE = /^(ERR_TLS_CERT|CERT_|UNABLE_TO_|SELF_SIGNED_CERT|DEPTH_ZERO_SELF_SIGNED|ERR_SSL_)/;

/**
 * A dispatcher that trusts only the certificate authorities in `pem` (one or more PEM
 * certificates) for an `https://` broker, instead of the system's: a broker inside a cluster
 * usually has a private CA, and pinning it keeps any public CA from vouching for an impostor.
 * Throws `broker.client.ca` when the bundle holds no certificate or one that does not parse.
 */
export function brokerCaDispatcher(pem: string): Agent {
  // A key has no business in a trust bundle: it was probably the wrong file, and it is a secret.
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) throw new AttexError('broker.client.ca', 'the broker CA bundle holds a private key: give it the CA certificates only');
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new AttexError('broker.client.ca', 'the broker CA bundle holds no PEM certificate (-----BEGIN CERTIFICATE-----; OpenSSL "TRUSTED CERTIFICATE" blocks are not read)');
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch {
      throw new AttexError('broker.client.ca', `certificate ${i + 1} of the broker CA bundle does not parse`);
    }
  });
  // A pinned intermediate is a trust anchor of its own (the usual private-PKI set-up): the
  // chain need not reach a self-signed root.
  return new Agent({ connect: { ca: blocks, allowPartialTrustChain: true } });
}

export class BrokerCallError extends AttexError {
  readonly retryable: boolean;
  readonly status: number | null;
  readonly problemType: string | null;

  constructor(code: string, message: string, opts: { retryable: boolean; status: number | null; problemType?: string | null; cause?: unknown }) {
    super(code, message, opts.cause === undefined ? {} : { cause: opts.cause });
    this.name = 'BrokerCallError';
    this.retryable = opts.retryable;
    this.status = opts.status;
    this.problemType = opts.problemType ?? null;
  }
}

export interface CallResult {
  readonly status: number;
  readonly json: unknown;
  readonly setCookie: readonly string[];
}

async function readBounded(body: Dispatcher.ResponseData['body']): Promise<string> {
  const bytes = await readCapped(body, MAX_RESPONSE_BYTES, () => body.destroy());
  if (bytes === undefined) throw new BrokerCallError('broker.client.response-too-large', 'broker response exceeds the size limit', { retryable: false, status: null });
  return bytes.toString('utf8');
}

/** A code the broker may choose: its own namespace, never one of the client's. */
const BROKER_CODE = /^[a-z0-9][a-z0-9.-]{0,63}$/;
// Control characters (C0, DEL, C1) of a broker's detail would reach logs and terminals.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

function transportError(err: unknown, caller: AbortSignal | undefined, deadline: AbortSignal, timeoutMs: number): BrokerCallError {
  if (err instanceof BrokerCallError) return err;
  if (caller?.aborted) return new BrokerCallError('broker.client.aborted', 'the broker call was aborted', { retryable: false, status: null, cause: err });
  if (deadline.aborted) return new BrokerCallError('broker.client.timeout', `the broker did not answer in full within ${timeoutMs} ms`, { retryable: true, status: null, cause: err });
  const code = (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code ?? 'error';
  // The broker answered with a certificate we do not trust: retrying will not change that.
  if (TLS_TRUST_FAILURE.test(code)) {
    return new BrokerCallError('broker.client.tls', `the broker's TLS certificate is not trusted (${String(code).slice(0, 64)}): check broker.caFile and the names the certificate is issued for`, { retryable: false, status: null, cause: err });
  }
  return new BrokerCallError('broker.client.unreachable', `the broker is unreachable (${String(code).slice(0, 64)})`, { retryable: true, status: null, cause: err });
}

/**
 * One call. `timeoutMs` bounds the whole exchange, connection to last body byte: a broker that
 * drips its body or sends 1xx answers forever is cut off like one that never answers.
 */
export async function callBroker(
  url: string,
  opts: { method: 'GET' | 'POST'; headers?: Record<string, string>; body?: unknown; dispatcher?: Dispatcher; signal?: AbortSignal; timeoutMs: number },
): Promise<CallResult> {
  const deadline = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal === undefined ? deadline : AbortSignal.any([opts.signal, deadline]);
  let res: Dispatcher.ResponseData;
  let text: string;
  try {
    res = await request(url, {
      method: opts.method,
      headers: { accept: 'application/json', ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }), ...opts.headers },
      ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
      ...(opts.dispatcher === undefined ? {} : { dispatcher: opts.dispatcher }),
      signal,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
    });
    text = await readBounded(res.body);
  } catch (err) {
    throw transportError(err, opts.signal, deadline, opts.timeoutMs);
  }
  let json: unknown = null;
  try {
    json = text.length === 0 ? null : JSON.parse(text);
  } catch {
    throw new BrokerCallError('broker.client.bad-response', `broker answered ${res.statusCode} with a body that is not JSON`, { retryable: res.statusCode >= 500, status: res.statusCode });
  }
  if (res.statusCode >= 400) {
    const problem = (typeof json === 'object' && json !== null ? json : {}) as { code?: unknown; type?: unknown; detail?: unknown };
    const ownCode = typeof problem.code === 'string' && BROKER_CODE.test(problem.code) && !problem.code.startsWith('broker.client.');
    const code = ownCode ? (problem.code as string) : `broker.http-${res.statusCode}`;
    const detail = typeof problem.detail === 'string' ? problem.detail.slice(0, 300).replace(CONTROL, ' ') : 'refused';
    throw new BrokerCallError(code, `broker refused (${res.statusCode}): ${detail}`, {
      retryable: res.statusCode >= 500 || res.statusCode === 429,
      status: res.statusCode,
      problemType: typeof problem.type === 'string' ? problem.type.slice(0, 200).replace(CONTROL, ' ') : null,
    });
  }
  // The protocol has no redirects or other non-2xx successes.
  if (res.statusCode < 200 || res.statusCode > 299) {
    throw new BrokerCallError('broker.client.bad-response', `broker answered ${res.statusCode}, not a 2xx success`, { retryable: false, status: res.statusCode });
  }
  const raw = res.headers['set-cookie'];
  const setCookie = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  return { status: res.statusCode, json, setCookie };
}
