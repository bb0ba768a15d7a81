/**
 * One GET with the manners a vendor service expects: bounded time, bounded size, a limited
 * number of attempts, exponential backoff on transient failures, and `Retry-After` honoured on
 * 429/503 (up to a cap: a service asking for a longer wait gets an error, not a hammering).
 */
import { type Dispatcher, request } from 'undici';
import { AttexError } from '../../errors/index.ts';
import { readCapped } from '../../util/index.ts';

export interface HttpOptions {
  /** undici dispatcher (Agent, ProxyAgent...). Default: undici's global dispatcher. */
  readonly dispatcher?: Dispatcher;
  /** Per-attempt limit for the whole exchange (headers and body). Default 15 s. */
  readonly timeoutMs?: number;
  /** Largest response body accepted. Default 1 MiB. */
  readonly maxBodyBytes?: number;
  /** Attempts in total, including the first. Default 4. */
  readonly maxAttempts?: number;
  /** First backoff delay when no Retry-After is given; doubles per attempt. Default 500 ms. */
  readonly backoffBaseMs?: number;
  /** Longest wait between attempts, from backoff or Retry-After. Default 30 s. */
  readonly maxRetryDelayMs?: number;
  /** Extra request headers (e.g. Ocp-Apim-Subscription-Key for PCS). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
  /** Clock for Retry-After HTTP-dates; tests may pin it. */
  readonly now?: () => number;
}

export interface HttpResponse {
  readonly url: string;
  readonly body: Uint8Array;
  /** Lower-case header names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  readonly attempts: number;
}

const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);

/** Delay requested by a Retry-After value (delta-seconds or HTTP-date), or null if unusable. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | null {
  if (value === undefined) return null;
  const trimmed = value.trim();
  if (/^\d{1,9}$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - nowMs);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function flattenHeaders(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** Drop a body we will not read. undici reports the abort as an 'error' event: expected here. */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => undefined);
  body.destroy();
}

async function readBody(body: Dispatcher.ResponseData['body'], maxBytes: number, url: string): Promise<Uint8Array> {
  const bytes = await readCapped(body, maxBytes, () => discard(body));
  if (bytes === undefined) throw new AttexError('collateral.too-large', `response from ${url} exceeds ${maxBytes} bytes`);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

class RetryableError extends Error {
  readonly retryAfterMs: number | null;
  constructor(message: string, retryAfterMs: number | null) {
    super(message);
    this.retryAfterMs = retryAfterMs;
  }
}

async function attempt(url: string, opts: HttpOptions, maxBodyBytes: number, timeoutMs: number): Promise<Omit<HttpResponse, 'attempts'>> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, {
      method: 'GET',
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      headers: { accept: '*/*', ...opts.headers },
      ...(opts.dispatcher !== undefined && { dispatcher: opts.dispatcher }),
    });
  } catch (err) {
    if (opts.signal?.aborted) throw new AttexError('collateral.aborted', `request to ${url} aborted`, { cause: err });
    throw new RetryableError(`request to ${url} failed: ${err instanceof Error ? err.message : String(err)}`, null);
  }
  const headers = flattenHeaders(res.headers as Record<string, string | string[] | undefined>);
  if (res.statusCode !== 200) {
    discard(res.body);
    if (RETRY_STATUSES.has(res.statusCode)) {
      throw new RetryableError(`${url} answered ${res.statusCode}`, parseRetryAfter(headers['retry-after'], (opts.now ?? Date.now)()));
    }
    const code = res.statusCode === 404 ? 'collateral.not-found' : 'collateral.http-error';
    throw new AttexError(code, `${url} answered ${res.statusCode}`, { details: { status: res.statusCode } });
  }
  const length = Number(headers['content-length']);
  if (Number.isFinite(length) && length > maxBodyBytes) {
    discard(res.body);
    throw new AttexError('collateral.too-large', `response from ${url} declares ${length} bytes, more than ${maxBodyBytes}`);
  }
  try {
    return { url, body: await readBody(res.body, maxBodyBytes, url), headers };
  } catch (err) {
    if (err instanceof AttexError) throw err;
    throw new RetryableError(`reading ${url} failed: ${err instanceof Error ? err.message : String(err)}`, null);
  }
}

/** GET `url`, retrying transient failures. Throws AttexError `collateral.*`. */
export async function httpGet(url: string, opts: HttpOptions = {}): Promise<HttpResponse> {
  const maxAttempts = Math.max(1, opts.maxAttempts ?? 4);
  const maxBodyBytes = opts.maxBodyBytes ?? 1024 * 1024;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const base = opts.backoffBaseMs ?? 500;
  const cap = opts.maxRetryDelayMs ?? 30_000;
  let last: RetryableError | undefined;
  for (let n = 1; n <= maxAttempts; n++) {
    try {
      return { ...(await attempt(url, opts, maxBodyBytes, timeoutMs)), attempts: n };
    } catch (err) {
      if (!(err instanceof RetryableError)) throw err;
      last = err;
    }
    if (n === maxAttempts) break;
    let delay: number;
    if (last.retryAfterMs !== null) {
      if (last.retryAfterMs > cap) {
        throw new AttexError('collateral.rate-limited', `${last.message}; asked to retry after ${Math.ceil(last.retryAfterMs / 1000)} s, more than the ${Math.ceil(cap / 1000)} s cap`);
      }
      delay = last.retryAfterMs;
    } else {
      // Full jitter keeps many clients from retrying in lock-step.
      delay = Math.min(cap, base * 2 ** (n - 1)) * (0.5 + Math.random() / 2);
    }
    try {
      await sleep(delay, opts.signal);
    } catch (err) {
      throw new AttexError('collateral.aborted', `request to ${url} aborted`, { cause: err });
    }
  }
  throw new AttexError('collateral.unavailable', `${last?.message ?? url} (gave up after ${maxAttempts} attempts)`, { cause: last });
}
