/**
 * HTTP Message Signatures (RFC 9421) for dispatch requests, with Ed25519 keys.
 *
 * A dispatch request is signed over `@method`, `@path`, `@query` and `content-digest`
 * (RFC 9530, sha-256), with the parameters `created`, `keyid`, `alg="ed25519"` and a random
 * `nonce`. The verifier requires all of them, checks `created` against an explicit `now` within
 * a skew window, recomputes the content digest from the exact body bytes, and refuses a
 * (keyid, nonce) pair it has already seen inside the window (replay protection).
 *
 * Structured fields are parsed by `structured-headers`. Requests are signed by the
 * `http-message-signatures` library; on the verifying side the signature base is built here from
 * the one parse of our member (see signatureBase), so the tests check one implementation against
 * the other. The policy (one `attex` signature, what it must cover, freshness, replay) is ours.
 */
import { createHash, createPublicKey, randomBytes, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { httpbis } from 'http-message-signatures';
import { type Dictionary, isInnerList, parseDictionary, serializeDictionary } from 'structured-headers';
import { AttexError } from '../errors/index.ts';

export const SIGNATURE_LABEL = 'attex';
export const COVERED_COMPONENTS = ['@method', '@path', '@query', 'content-digest'] as const;
export const DEFAULT_MAX_SKEW_SECONDS = 300;

export interface HttpRequestParts {
  readonly method: string;
  /** Absolute URL or origin-form path with query, e.g. `/v1/actions/transform?x=1`. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Uint8Array;
}

/** What a verified signature proves; recorded verbatim in the execution receipt. */
export interface VerifiedRequestSignature {
  readonly keyId: string;
  readonly signatureInput: string;
  readonly signature: string;
  readonly contentDigest: string;
  readonly created: number;
  readonly nonce: string;
}

export function contentDigest(body: Uint8Array): string {
  return `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
}

export async function signRequest(
  req: { method: string; url: string; headers?: Record<string, string>; body: Uint8Array },
  key: { keyId: string; privateKey: KeyObject },
  now: Date = new Date(),
): Promise<Record<string, string>> {
  const url = new URL(req.url, 'http://attex.invalid');
  const headers: Record<string, string> = { ...req.headers, 'content-digest': contentDigest(req.body) };
  const signed = await httpbis.signMessage(
    {
      key: { id: key.keyId, alg: 'ed25519', sign: async (data: Buffer) => edSign(null, data, key.privateKey) },
      name: SIGNATURE_LABEL,
      fields: [...COVERED_COMPONENTS],
      params: ['created', 'keyid', 'alg', 'nonce'],
      paramValues: { created: now, nonce: randomBytes(16).toString('base64url') },
    },
    { method: req.method.toUpperCase(), url: url.href, headers },
  );
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(signed.headers)) out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
  return out;
}

/**
 * Remembers (keyid, nonce) pairs for the freshness window. Memory is bounded: when full, the
 * oldest entries are evicted only if they are outside the window; otherwise new requests are
 * refused (`auth.replay-cache-full`) rather than weakening replay protection.
 */
export class ReplayCache {
  private readonly seen = new Map<string, number>();
  private readonly windowSeconds: number;
  private readonly maxEntries: number;

  constructor(windowSeconds = DEFAULT_MAX_SKEW_SECONDS * 2, maxEntries = 1_000_000) {
    this.windowSeconds = windowSeconds;
    this.maxEntries = maxEntries;
  }

  /** Returns false when the pair was already seen; records it otherwise. */
  remember(keyId: string, nonce: string, nowSeconds: number): boolean {
    this.evict(nowSeconds);
    const id = `${keyId}\u0000${nonce}`;
    if (this.seen.has(id)) return false;
    if (this.seen.size >= this.maxEntries) throw new AttexError('auth.replay-cache-full', 'too many signed requests in the freshness window; retry later');
    this.seen.set(id, nowSeconds);
    return true;
  }

  private evict(nowSeconds: number): void {
    // Map iteration is insertion order, which is (almost) time order: stop at the first fresh entry.
    for (const [id, at] of this.seen) {
      if (nowSeconds - at <= this.windowSeconds) break;
      this.seen.delete(id);
    }
  }
}

export interface VerifyRequestOptions {
  readonly lookupKey: (keyId: string) => KeyObject | undefined;
  readonly now: Date;
  readonly replay: ReplayCache;
  readonly maxSkewSeconds?: number;
}

function header(headers: HttpRequestParts['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
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
  const signatureInputHeader = header(req.headers, 'signature-input');
  const signatureHeader = header(req.headers, 'signature');
  const digest = header(req.headers, 'content-digest');
  if (!signatureInputHeader || !signatureHeader) throw new AttexError('auth.unsigned', 'request is not signed: Signature and Signature-Input headers are required (RFC 9421)');
  if (signatureInputHeader.length > 2048 || signatureHeader.length > 1024) throw new AttexError('auth.malformed-signature', 'signature headers are too long');
  if (!digest) throw new AttexError('auth.missing-digest', 'Content-Digest header is required and must be covered by the signature');
  if (digest !== contentDigest(req.body)) throw new AttexError('auth.digest-mismatch', 'Content-Digest does not match the request body');

  const ours = readSignature(signatureInputHeader, signatureHeader);
  const maxSkew = opts.maxSkewSeconds ?? DEFAULT_MAX_SKEW_SECONDS;
  const nowSeconds = Math.floor(opts.now.getTime() / 1000);
  if (Math.abs(nowSeconds - ours.created) > maxSkew) {
    throw new AttexError('auth.stale-signature', `signature created ${ours.created} is outside the ${maxSkew}s window around ${nowSeconds}`);
  }
  if (ours.expires !== undefined && nowSeconds > ours.expires) {
    throw new AttexError('auth.stale-signature', `signature expired at ${ours.expires}, before ${nowSeconds}`);
  }
  const key = opts.lookupKey(ours.keyId);
  if (!key) throw new AttexError('auth.unknown-key', `no caller is configured with key id '${ours.keyId}'`);

  const url = new URL(req.url, 'http://attex.invalid');
  const base = signatureBase(req, url, ours);
  let ok: boolean;
  try {
    ok = edVerify(null, Buffer.from(base), key, ours.signatureBytes);
  } catch (err) {
    throw new AttexError('auth.bad-signature', `signature does not verify: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!ok) throw new AttexError('auth.bad-signature', 'signature does not verify with the caller key');
  if (!opts.replay.remember(ours.keyId, ours.nonce, nowSeconds)) {
    throw new AttexError('auth.replayed', 'this signed request was already received (nonce reused)');
  }
  return { keyId: ours.keyId, signatureInput: ours.signatureInput, signature: ours.signature, contentDigest: digest, created: ours.created, nonce: ours.nonce };
}

interface OurSignature {
  readonly keyId: string;
  readonly created: number;
  readonly expires: number | undefined;
  readonly nonce: string;
  /** Covered components, in the signed order: lowercase names without parameters. */
  readonly components: readonly string[];
  readonly signatureBytes: Buffer;
  /** `attex=(...);params`, re-serialized from the parsed member. */
  readonly signatureInput: string;
  /** `attex=:base64:`, re-serialized from the parsed member. */
  readonly signature: string;
}

function malformed(detail: string): AttexError {
  return new AttexError('auth.malformed-signature', detail);
}

function dictionary(value: string, name: string): Dictionary {
  try {
    return parseDictionary(value);
  } catch {
    throw malformed(`${name} is not a structured-field dictionary (RFC 8941)`);
  }
}

/** Our label's members of both headers, checked against the policy (coverage and parameters). */
function readSignature(signatureInputHeader: string, signatureHeader: string): OurSignature {
  const input = dictionary(signatureInputHeader, 'Signature-Input').get(SIGNATURE_LABEL);
  const signature = dictionary(signatureHeader, 'Signature').get(SIGNATURE_LABEL);
  if (input === undefined || signature === undefined) throw malformed(`Signature-Input and Signature must both carry a '${SIGNATURE_LABEL}' signature`);
  if (!isInnerList(input)) throw malformed(`Signature-Input '${SIGNATURE_LABEL}' must be an inner list of covered components`);
  if (isInnerList(signature) || !(signature[0] instanceof ArrayBuffer)) throw malformed(`Signature '${SIGNATURE_LABEL}' must be a byte sequence`);
  const [components, params] = input;
  // A component counts only as a plain string: `"content-digest";sf` is another component.
  const covered = new Set(components.filter(([value, p]) => typeof value === 'string' && p.size === 0).map(([value]) => value));
  for (const c of COVERED_COMPONENTS) {
    if (!covered.has(c)) throw new AttexError('auth.incomplete-coverage', `signature must cover ${COVERED_COMPONENTS.join(', ')}; '${c}' is missing`);
  }
  const alg = params.get('alg');
  const created = params.get('created');
  const keyId = params.get('keyid');
  const nonce = params.get('nonce');
  if (alg !== 'ed25519') throw malformed('signature parameter alg must be the string "ed25519"');
  if (typeof created !== 'number' || !Number.isSafeInteger(created)) throw malformed('signature parameter created must be an integer (seconds since the epoch)');
  if (typeof keyId !== 'string' || keyId.length === 0) throw malformed('signature parameter keyid is required (a string)');
  if (typeof nonce !== 'string' || nonce.length < 16 || nonce.length > 128) throw malformed('signature parameter nonce is required (a string of 16-128 characters)');
  const expires = params.get('expires');
  if (expires !== undefined && (typeof expires !== 'number' || !Number.isSafeInteger(expires))) throw malformed('signature parameter expires must be an integer (seconds since the epoch)');
  for (const [name, value] of params) {
    if (!SIGNATURE_PARAMETERS.has(name)) throw malformed(`signature parameter ${name.slice(0, 32)} is not one RFC 9421 defines (created, expires, keyid, alg, nonce, tag)`);
    if (name === 'tag' && typeof value !== 'string') throw malformed('signature parameter tag must be a string');
  }
  const names: string[] = [];
  for (const [value, p] of components) {
    if (typeof value !== 'string' || p.size > 0 || !COMPONENT_NAME.test(value) || !DERIVABLE.has(value) && value.startsWith('@')) {
      throw new AttexError('auth.unsupported-component', `covered component ${typeof value === 'string' ? JSON.stringify(value) : 'of another type'}${p.size > 0 ? ' with parameters' : ''} is not supported: cover ${[...DERIVABLE].join(', ')} and lowercase header fields, without parameters`);
    }
    if (names.includes(value)) throw malformed(`covered component "${value}" appears twice`);
    names.push(value);
  }
  const signatureInput = serializeDictionary(new Map([[SIGNATURE_LABEL, input]]));
  // The base is built from this re-serialization, so it must be what was sent: a member written
  // otherwise (`created=1.0`, a date or display string the serializer does not reproduce) would
  // let different headers share one signature, and the receipt would record neither.
  if (!memberAsSent(signatureInputHeader, signatureInput)) throw malformed(`Signature-Input '${SIGNATURE_LABEL}' must be sent in its canonical RFC 8941 serialization`);
  return {
    keyId,
    created,
    expires,
    nonce,
    components: names,
    signatureBytes: Buffer.from(signature[0]),
    signatureInput,
    signature: serializeDictionary(new Map([[SIGNATURE_LABEL, signature]])),
  };
}

/** Whether `member` is one of the dictionary's members exactly as sent (between commas). */
function memberAsSent(header: string, member: string): boolean {
  for (let at = header.indexOf(member); at !== -1; at = header.indexOf(member, at + 1)) {
    const before = header.slice(0, at).replace(/[ \t]+$/, '');
    const after = header.slice(at + member.length).replace(/^[ \t]+/, '');
    if ((before === '' || before.endsWith(',')) && (after === '' || after.startsWith(','))) return true;
  }
  return false;
}

/** The signature parameters RFC 9421 §2.3 defines; no other has a meaning here. */
const SIGNATURE_PARAMETERS: ReadonlySet<string> = new Set(['created', 'expires', 'keyid', 'alg', 'nonce', 'tag']);

/** A header field name (RFC 9110 token), lowercase, or a derived component name. */
const COMPONENT_NAME = /^@?[a-z0-9!#$%&'*+.^_`|~-]+$/;

/**
 * Derived components the executor can compute as the caller saw them. `@authority`,
 * `@scheme` and `@target-uri` are not among them: behind a proxy or load balancer the executor
 * does not see the caller's authority and scheme, so such a signature could never verify.
 */
const DERIVABLE: ReadonlySet<string> = new Set(['@method', '@path', '@query', '@request-target']);

/**
 * The signature base (RFC 9421 §2.5) of our member: one line per covered component, then
 * `@signature-params`, which is the member re-serialized (the same string the receipt records).
 * Built here rather than by the library so the member is parsed once, and so only what this
 * function derives can ever be signed over.
 */
function signatureBase(req: HttpRequestParts, url: URL, ours: OurSignature): string {
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

/** Loads an Ed25519 public key from PEM, raw base64 (32 bytes) or hex. */
export function ed25519PublicKey(text: string): KeyObject {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN')) return createPublicKey(trimmed);
  const raw = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  if (raw.length !== 32) throw new AttexError('auth.bad-key', 'an Ed25519 public key is 32 bytes (PEM, base64 or hex)');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}
