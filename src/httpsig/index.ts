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
 * the one parse of our member (member.ts, verify.ts), so the tests check one implementation against
 * the other. The policy (one `attex` signature, what it must cover, freshness, replay) is ours.
 */
export { COVERED_COMPONENTS, DEFAULT_MAX_FUTURE_SECONDS, DEFAULT_MAX_SKEW_SECONDS, SIGNATURE_LABEL, contentDigest, type HttpRequestParts, type VerifiedRequestSignature } from './common.ts';
export { ed25519PublicKey } from './keys.ts';
export { ReplayCache } from './replay.ts';
export { signRequest } from './sign.ts';
export { type VerifiedHeaders, type VerifyRequestOptions, verifyRequest, verifyRequestBody, verifyRequestHeaders } from './verify.ts';
