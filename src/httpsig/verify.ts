/** Verifying a signed dispatch request: digest, our member, freshness, the signature, the nonce. */
import type { KeyObject } from 'node:crypto';
import { ed25519PublicKeyBytes, verifyEd25519Sodium } from '../ed25519/index.ts';
import { AttexError } from '../errors/index.ts';
import { DEFAULT_MAX_FUTURE_SECONDS, DEFAULT_MAX_SKEW_SECONDS, type HttpRequestParts, SIGNATURE_LABEL, type VerifiedRequestSignature, contentDigest } from './common.ts';
import { type OurSignature, readSignature } from './member.ts';
import type { ReplayCache } from './replay.ts';

export interface VerifyRequestOptions {
  readonly lookupKey: (keyId: string) => KeyObject | undefined;
  readonly now: Date;
  readonly replay: ReplayCache;
  /** How old `created` may be (default 300 s). */
  readonly maxSkewSeconds?: number;
  /** How far ahead of `now` `created` may be (default 10 s). */
  readonly maxFutureSeconds?: number;
  /**
   * Seconds since the epoch: signatures created earlier are refused. The replay cache knows
   * only the nonces it has seen; a request signed before it existed may have been accepted by
   * the process before it (a restart), so it cannot be told from a replay.
   */
  readonly notBefore?: number;
}

function header(headers: HttpRequestParts['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * What verifying a request's headers established: a signature by a known key over the method,
 * path, query and the Content-Digest header, fresh. The body's match with that digest and the
 * nonce are checked once the body is in (verifyRequestBody).
 */
export interface VerifiedHeaders {
  readonly ours: OurSignature;
  readonly digest: string;
  readonly nowSeconds: number;
  /** When the signature stops passing the freshness check: its nonce need not be kept longer. */
  readonly freshUntil: number;
}

/**
 * Verifies a signed request; throws AttexError `auth.*` (all map to HTTP 401).
 *
 * Only the `attex` members of Signature-Input and Signature count. They are parsed as RFC 8941
 * dictionaries (a repeated key: the last one wins, as the RFC says), checked against our policy,
 * and the signature base is built from that same parse, so the signature that is verified is
 * exactly the one whose freshness and nonce were checked, whatever other labels a request
 * carries. The receipt records those members, re-serialized on their own.
 */
export async function verifyRequest(req: HttpRequestParts, opts: VerifyRequestOptions): Promise<VerifiedRequestSignature> {
  return verifyRequestBody(verifyRequestHeaders(req, opts), req.body, opts.replay);
}

/**
 * The checks that need only the headers, signature included (it covers the Content-Digest
 * header, not the body): a server can refuse an unsigned or forged request before reading its
 * body.
 */
export function verifyRequestHeaders(req: Omit<HttpRequestParts, 'body'>, opts: Omit<VerifyRequestOptions, 'replay'>): VerifiedHeaders {
  const signatureInputHeader = header(req.headers, 'signature-input');
  const signatureHeader = header(req.headers, 'signature');
  const digest = header(req.headers, 'content-digest');
  if (!signatureInputHeader || !signatureHeader) throw new AttexError('auth.unsigned', 'request is not signed: Signature and Signature-Input headers are required (RFC 9421)');
  if (signatureInputHeader.length > 2048 || signatureHeader.length > 1024) throw new AttexError('auth.malformed-signature', 'signature headers are too long');
  if (!digest) throw new AttexError('auth.missing-digest', 'Content-Digest header is required and must be covered by the signature');

  const ours = readSignature(signatureInputHeader, signatureHeader);
  const maxSkew = opts.maxSkewSeconds ?? DEFAULT_MAX_SKEW_SECONDS;
  const nowSeconds = Math.floor(opts.now.getTime() / 1000);
  const maxFuture = opts.maxFutureSeconds ?? DEFAULT_MAX_FUTURE_SECONDS;
  if (nowSeconds - ours.created > maxSkew) {
    throw new AttexError('auth.stale-signature', `signature created ${ours.created} is more than ${maxSkew} s before ${nowSeconds}`);
  }
  if (ours.created - nowSeconds > maxFuture) {
    throw new AttexError('auth.stale-signature', `signature created ${ours.created} is more than ${maxFuture} s ahead of this executor's clock (${nowSeconds}); check the signer's clock`);
  }
  if (opts.notBefore !== undefined && ours.created < opts.notBefore) {
    throw new AttexError('auth.stale-signature', `signature created ${ours.created}, before ${opts.notBefore}, from when this executor accepts signatures (the process before it may have accepted older ones, so their nonces cannot be checked); sign the request again`);
  }
  if (ours.expires !== undefined && nowSeconds > ours.expires) {
    throw new AttexError('auth.stale-signature', `signature expired at ${ours.expires}, before ${nowSeconds}`);
  }
  const key = opts.lookupKey(ours.keyId);
  if (!key) throw new AttexError('auth.unknown-key', `no caller is configured with key id '${ours.keyId}'`);

  const url = new URL(req.url, 'http://attex.invalid');
  const base = signatureBase(req, url, ours);
  if (!verifyEd25519Sodium(ours.signatureBytes, Buffer.from(base), rawKey(key))) throw new AttexError('auth.bad-signature', 'signature does not verify with the caller key');
  return { ours, digest, nowSeconds, freshUntil: Math.min(ours.created + maxSkew, ours.expires ?? Number.POSITIVE_INFINITY) };
}

/** The rest, once the body is in: it must match the signed digest, and the nonce be new. */
export function verifyRequestBody(verified: VerifiedHeaders, body: Uint8Array, replay: ReplayCache): VerifiedRequestSignature {
  const { ours, digest, nowSeconds, freshUntil } = verified;
  if (digest !== contentDigest(body)) throw new AttexError('auth.digest-mismatch', 'Content-Digest does not match the request body');
  if (!replay.remember(ours.keyId, ours.nonce, nowSeconds, freshUntil)) {
    throw new AttexError('auth.replayed', 'this signed request was already received (nonce reused)');
  }
  return { keyId: ours.keyId, signatureInput: ours.signatureInput, signature: ours.signature, contentDigest: digest, created: ours.created, nonce: ours.nonce, components: ours.components };
}

const rawKeys = new WeakMap<KeyObject, Uint8Array>();

/** The raw 32 bytes of a caller's Ed25519 public key (empty for any other key: it verifies nothing). */
function rawKey(key: KeyObject): Uint8Array {
  let raw = rawKeys.get(key);
  if (raw === undefined) {
    raw = (key.type === 'public' ? ed25519PublicKeyBytes(key) : undefined) ?? new Uint8Array(0);
    rawKeys.set(key, raw);
  }
  return raw;
}

/**
 * The signature base (RFC 9421 §2.5) of our member: one line per covered component, then
 * `@signature-params`, which is the member re-serialized (the same string the receipt records).
 * Built here rather than by the library so the member is parsed once, and so only what this
 * function derives can ever be signed over.
 */
function signatureBase(req: Omit<HttpRequestParts, 'body'>, url: URL, ours: OurSignature): string {
  const lines: string[] = [];
  for (const name of ours.components) {
    let value: string;
    switch (name) {
      case '@method':
        value = req.method.toUpperCase();
        break;
      case '@path':
        value = url.pathname || '/';
        break;
      case '@query':
        value = url.search || '?';
        break;
      case '@request-target':
        value = url.pathname + url.search;
        break;
      default: {
        // Own members only: Node's header object inherits from Object.prototype (`constructor`).
        const raw = Object.hasOwn(req.headers, name) ? req.headers[name] : undefined;
        const lines = typeof raw === 'string' ? [raw] : Array.isArray(raw) && raw.every((v) => typeof v === 'string') ? raw : undefined;
        if (lines === undefined) throw new AttexError('auth.bad-signature', `the signature covers the header ${name}, which the request does not carry`);
        // RFC 9421 §2.1 strips spaces and tabs only (String.trim would strip U+00A0 too).
        value = lines.map((v) => v.replace(/^[ \t]+|[ \t]+$/g, '')).join(', ');
        // Printable ASCII (and tabs) only: HTTP parsers refuse line breaks, and other bytes reach
        // us decoded as latin1, so the signer's bytes and ours could differ.
        if (/[^\t\x20-\x7e]/.test(value)) throw new AttexError('auth.bad-signature', `the covered header ${name} holds characters other than printable ASCII`);
      }
    }
    lines.push(`"${name}": ${value}`);
  }
  lines.push(`"@signature-params": ${ours.signatureInput.slice(SIGNATURE_LABEL.length + 1)}`);
  return lines.join('\n');
}
