/**
 * The host side of `attex:action/http`: every request is checked against the grant, resolved
 * once, every resolved address checked, and the connection pinned to the checked address (no
 * second lookup, so DNS rebinding cannot swap it). No redirects are followed. Response size and
 * time are capped.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Agent, request } from 'undici';
import type { SecretHeaderGrant } from './manifest.ts';
import { checkAddress, checkOrigin, isGuestHeaderName } from './net-policy.ts';
import { quotesAnySecret } from './secret-echo.ts';

/** Resolve a hostname to its addresses; injectable so tests can point names anywhere. */
export type Resolver = (hostname: string) => Promise<string[]>;

export const systemResolver: Resolver = async (hostname) => (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => a.address);

type LookupCallback = (err: Error | null, address: string | Array<{ address: string; family: number }>, family?: number) => void;

/**
 * A `lookup` for net.connect that answers with the one checked address whatever the name. Node's
 * connect asks for every address (`all: true`, for happy eyeballs) or for one; both are answered.
 */
export function pinnedLookup(address: string, family: number): (host: string, opts: { all?: boolean } | undefined, cb: LookupCallback) => void {
  return (_host, opts, cb) => (opts?.all ? cb(null, [{ address, family }]) : cb(null, address, family));
}

export interface GuestRequest {
  method: string;
  url: string;
  headers: Array<[string, string]>;
  body: Uint8Array | undefined;
  secretHeaders: Array<{ name: string; secret: string; prefix: string }>;
}

export type HttpResult =
  | { tag: 'ok'; val: { status: number; headers: Array<[string, string]>; body: Uint8Array } }
  | { tag: 'err'; val: { tag: 'denied' | 'invalid-request' | 'too-large' | 'timeout' | 'transport'; val: string } };

export interface FetchContext {
  readonly grants: readonly string[];
  /** Which secret may go into which header to which origins (grants.secret_headers). */
  readonly secretHeaderGrants: readonly SecretHeaderGrant[];
  readonly maxResponseBytes: number;
  readonly deadline: number;
  readonly resolver: Resolver;
  /** Aborted when the run is over: the request must not start, or must stop. */
  readonly ended: AbortSignal;
  /** Secret header values, looked up (and recorded as used) only once every check passed. */
  readonly secretValue: (name: string) => Uint8Array | { denied: string };
  /** Values of the secrets the run has used so far without revealing them: no response may quote one. */
  readonly secretsInUse: () => readonly Uint8Array[];
  readonly onContact: (origin: string) => void;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);
const MAX_REQUEST_BODY = 1 << 20;
/** What an HTTP/1.1 header value may not hold (undici's own rule, CR, LF and NUL included), checked before anything is sent. */
const BAD_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

const err = (tag: 'denied' | 'invalid-request' | 'too-large' | 'timeout' | 'transport', val: string): HttpResult => ({ tag: 'err', val: { tag, val } });

/** Resolves `host`, or undefined if the run's time runs out first. */
async function resolveBefore(resolver: Resolver, host: string, deadline: number): Promise<string[] | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - performance.now()), undefined)));
  try {
    return await Promise.race([resolver(host), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Limits on the request's shape, checked before anything else looks at it. */
const MAX_URL_CHARS = 8192;
const MAX_HEADERS = 64;
const MAX_HEADER_CHARS = 8192;
const MAX_SECRET_HEADERS = 16;

const isString = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max;

/**
 * What the worker forwards is typed by the component's ABI, but a worker taken over by its guest
 * could send anything: a sparse array of length 1e8 costs a few bytes to post and gigabytes to
 * turn into a header. Only plain strings and byte arrays of bounded size get any further.
 */
function malformedRequest(req: GuestRequest): string | undefined {
  if (typeof req !== 'object' || req === null) return 'the request is not a record';
  if (!isString(req.method, 16)) return 'method must be a short string';
  if (!isString(req.url, MAX_URL_CHARS)) return `url must be a string of at most ${MAX_URL_CHARS} characters`;
  if (!Array.isArray(req.headers) || req.headers.length > MAX_HEADERS) return `headers must be a list of at most ${MAX_HEADERS}`;
  for (const h of req.headers as unknown[]) {
    if (!Array.isArray(h) || h.length !== 2 || !isString(h[0], 128) || !isString(h[1], MAX_HEADER_CHARS)) return 'each header must be a pair of strings';
  }
  if (!Array.isArray(req.secretHeaders) || req.secretHeaders.length > MAX_SECRET_HEADERS) return `secret-headers must be a list of at most ${MAX_SECRET_HEADERS}`;
  for (const sh of req.secretHeaders as unknown[]) {
    const r = sh as { name?: unknown; secret?: unknown; prefix?: unknown } | null;
    if (typeof r !== 'object' || r === null || !isString(r.name, 128) || !isString(r.secret, 128) || !isString(r.prefix, 256)) return 'each secret-header must name a header, a secret and a prefix';
  }
  if (req.body !== undefined && !(req.body instanceof Uint8Array)) return 'body must be bytes';
  if (req.body && req.body.byteLength > MAX_REQUEST_BODY) return 'request body too large';
  return undefined;
}

/**
 * Every check comes first (shape, method, origin, headers, secret bindings, name resolution and
 * each resolved address); only then are secret values read and the origin recorded as
 * contacted, so a refused request marks nothing as used.
 */
export async function guestFetch(req: GuestRequest, ctx: FetchContext): Promise<HttpResult> {
  const malformed = malformedRequest(req);
  if (malformed !== undefined) return err('invalid-request', malformed);
  const method = req.method.toUpperCase();
  if (!METHODS.has(method)) return err('invalid-request', `method ${method.slice(0, 16)} is not supported`);
  const origin = checkOrigin(req.url, ctx.grants);
  if (!origin.allowed) return err('denied', origin.reason);
  const headers: Record<string, string> = {};
  for (const [name, value] of req.headers) {
    const n = name.toLowerCase();
    if (!isGuestHeaderName(n) || BAD_HEADER_VALUE.test(value)) {
      return err('invalid-request', `header ${n.slice(0, 64)} is not allowed`);
    }
    headers[n] = value;
  }
  const secretHeaders: Array<{ name: string; secret: string; prefix: string }> = [];
  for (const sh of req.secretHeaders) {
    const n = sh.name.toLowerCase();
    if (!isGuestHeaderName(n)) return err('invalid-request', `header ${n.slice(0, 64)} is not allowed`);
    // A secret leaves the host only in a header and to origins its grant names: a guest that
    // could pick either could send it to any granted origin that echoes requests back.
    const bound = ctx.secretHeaderGrants.some((g) => g.secret === sh.secret && g.header === n && checkOrigin(req.url, g.origins).allowed);
    if (!bound) return err('denied', `secret '${sh.secret.slice(0, 64)}' may not be sent in header ${n} to ${origin.origin} (grants.secret_headers)`);
    if (BAD_HEADER_VALUE.test(sh.prefix)) return err('invalid-request', 'secret header prefix contains characters a header may not hold');
    secretHeaders.push({ name: n, secret: sh.secret, prefix: sh.prefix });
  }

  let addresses: string[] | undefined;
  try {
    addresses = isIP(origin.host) ? [origin.host] : await resolveBefore(ctx.resolver, origin.host, ctx.deadline);
  } catch (e) {
    return err('transport', `cannot resolve ${origin.host}: ${(e as Error).message.slice(0, 100)}`);
  }
  if (addresses === undefined) return err('timeout', `resolving ${origin.host} did not finish within the time limit`);
  if (addresses.length === 0) return err('transport', `${origin.host} has no addresses`);
  for (const ip of addresses) {
    const verdict = checkAddress(ip, origin.host, origin.grant);
    if (!verdict.allowed) return err('denied', verdict.reason);
  }
  const pinned = addresses[0]!;
  const family = isIP(pinned);
  const remaining = ctx.deadline - performance.now();
  if (remaining <= 0 || ctx.ended.aborted) return err('timeout', 'no time left for the request');

  for (const sh of secretHeaders) {
    const value = ctx.secretValue(sh.secret);
    if (!(value instanceof Uint8Array)) return err('denied', value.denied);
    // Printable ASCII only: other bytes would go out in a form the echo search does not look for.
    // The value is never quoted back: it is a secret.
    if (value.some((byte) => byte < 0x20 || byte > 0x7e)) return err('invalid-request', 'secret value is not printable ASCII; it cannot be sent in a header');
    headers[sh.name] = sh.prefix + Buffer.from(value).toString('latin1');
  }
  // Secrets sent now or used earlier in the run: the response must be readable to be searched.
  const guarded = ctx.secretsInUse();
  if (guarded.length > 0) headers['accept-encoding'] = 'identity';

  const agent = new Agent({
    connections: 1,
    pipelining: 0,
    connect: {
      timeout: remaining,
      lookup: pinnedLookup(pinned, family),
    } as object,
  });
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error('timeout')), remaining);
  const signal = AbortSignal.any([abort.signal, ctx.ended]);
  try {
    ctx.onContact(origin.origin);
    const res = await request(req.url, {
      dispatcher: agent,
      method: method as 'GET',
      headers,
      body: req.body ? Buffer.from(req.body) : null,
      signal,
      headersTimeout: remaining,
      bodyTimeout: remaining,
    });
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of res.body) {
      total += (chunk as Buffer).length;
      if (total > ctx.maxResponseBytes) {
        res.body.destroy();
        return err('too-large', `response exceeds ${ctx.maxResponseBytes} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    const outHeaders: Array<[string, string]> = [];
    for (const [k, v] of Object.entries(res.headers)) {
      if (v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) outHeaders.push([k, one]);
    }
    const body = Buffer.concat(chunks);
    const encoding = res.headers['content-encoding'];
    if (guarded.length > 0 && encoding !== undefined && String(encoding).trim().toLowerCase() !== 'identity') {
      return err('denied', 'the response is encoded (content-encoding) although identity was asked for while the run holds secrets; it is withheld from the guest');
    }
    if (await quotesAnySecret(guarded, body, outHeaders)) {
      return err('denied', 'the response quotes a secret the run has used; it is withheld from the guest');
    }
    return { tag: 'ok', val: { status: res.statusCode, headers: outHeaders, body: new Uint8Array(body) } };
  } catch (e) {
    if (signal.aborted) return err('timeout', 'request timed out');
    return err('transport', (e as Error).message.slice(0, 200));
  } finally {
    clearTimeout(timer);
    await agent.destroy().catch(() => undefined);
  }
}
