import { AttexError } from '../errors/index.ts';
import { DEFAULT_MAX_SKEW_SECONDS } from './common.ts';

/**
 * Remembers (keyid, nonce) pairs while a request carrying them could still be accepted: until its
 * `created` falls out of the freshness window. Memory is bounded: when full, new requests are
 * refused (`auth.replay-cache-full`) rather than weakening replay protection. Each key may hold
 * only its share of the cache, so one caller flooding it (with requests refused later, say by
 * its rate limit) fills its own share and not the other callers'.
 */
export class ReplayCache {
  /** Entry id → the second after which it can be forgotten. */
  private readonly seen = new Map<string, number>();
  private readonly perKey = new Map<string, number>();
  private readonly windowSeconds: number;
  private readonly maxEntries: number;
  private readonly maxPerKey: number;

  /** `windowSeconds`: how long a pair is kept when `remember` is not told when it expires. */
  constructor(windowSeconds = DEFAULT_MAX_SKEW_SECONDS * 2, maxEntries = 1_000_000, maxPerKey = Math.ceil(maxEntries / 4)) {
    this.windowSeconds = windowSeconds;
    this.maxEntries = maxEntries;
    this.maxPerKey = Math.min(maxEntries, maxPerKey);
  }

  /**
   * Returns false when the pair was already seen; records it otherwise, until `expiresAt`
   * (seconds; the signature's `created` plus the allowed skew: no later request with it passes
   * the freshness check).
   */
  remember(keyId: string, nonce: string, nowSeconds: number, expiresAt = nowSeconds + this.windowSeconds): boolean {
    this.evict(nowSeconds);
    const id = `${keyId}\u0000${nonce}`;
    if (this.seen.has(id)) return false;
    const held = this.perKey.get(keyId) ?? 0;
    if (this.seen.size >= this.maxEntries || held >= this.maxPerKey) {
      throw new AttexError('auth.replay-cache-full', 'too many signed requests in the freshness window; retry later');
    }
    this.seen.set(id, expiresAt);
    this.perKey.set(keyId, held + 1);
    return true;
  }

  private evict(nowSeconds: number): void {
    // Map iteration is insertion order, which is (almost) expiry order: stop at the first entry
    // still needed. One that expires earlier behind it waits a little longer; that is safe.
    for (const [id, expiresAt] of this.seen) {
      if (nowSeconds <= expiresAt) break;
      this.seen.delete(id);
      const keyId = id.slice(0, id.indexOf('\u0000'));
      const held = (this.perKey.get(keyId) ?? 1) - 1;
      if (held > 0) this.perKey.set(keyId, held);
      else this.perKey.delete(keyId);
    }
  }
}
