/** What the signer and the verifier agree on: our label, what it covers, the digest. */
import { createHash } from 'node:crypto';

export const SIGNATURE_LABEL = 'attex';
export const COVERED_COMPONENTS = ['@method', '@path', '@query', 'content-digest'] as const;
export const DEFAULT_MAX_SKEW_SECONDS = 300;
/**
 * How far ahead of the verifier's clock `created` may be. Small on purpose: a restarted
 * executor accepts no signature until this long after the process before it stopped accepting
 * (its replay horizon, src/server/replay-horizon.ts), since one created that far ahead may have
 * been accepted before the restart.
 */
export const DEFAULT_MAX_FUTURE_SECONDS = 10;

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
  /** Covered components, in the signed order. */
  readonly components: readonly string[];
}

export function contentDigest(body: Uint8Array): string {
  return `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
}
