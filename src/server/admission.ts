/**
 * Admission control in front of the sandbox pool: a bounded queue (backpressure instead of
 * unbounded memory) and per-caller token buckets (fairness). Both are pure in-memory state
 * driven by an explicit clock so their behaviour is testable without sleeping.
 */
import { AttexError } from '../errors/index.ts';

export interface QueueOptions {
  /** Actions allowed to run at once (normally the pool size). */
  readonly concurrency: number;
  /** Actions allowed to wait; past this, callers get 503 with Retry-After. */
  readonly maxQueued: number;
}

/** A FIFO semaphore with a bounded waiting room. */
export class DispatchQueue {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly opts: QueueOptions;
  private closed = false;

  constructor(opts: QueueOptions) {
    if (opts.concurrency < 1 || opts.maxQueued < 0) throw new RangeError('concurrency ≥ 1 and maxQueued ≥ 0 required');
    this.opts = opts;
  }

  get stats(): { running: number; queued: number; concurrency: number; maxQueued: number } {
    return { running: this.running, queued: this.waiting.length, concurrency: this.opts.concurrency, maxQueued: this.opts.maxQueued };
  }

  /** Runs `task` when a slot is free; refuses at once when the waiting room is full or closed. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.closed) throw new AttexError('server.shutting-down', 'the executor is shutting down');
    if (this.running >= this.opts.concurrency) {
      if (this.waiting.length >= this.opts.maxQueued) {
        throw new AttexError('server.overloaded', 'all sandbox workers are busy and the queue is full; retry later', { details: this.stats });
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // the slot passes straight to the next waiter
      else this.running--;
    }
  }

  /** Stop admitting; resolves once everything admitted has finished. */
  async drain(): Promise<void> {
    this.closed = true;
    while (this.running > 0 || this.waiting.length > 0) await new Promise((r) => setTimeout(r, 10));
  }
}

export interface RateLimit {
  /** Sustained requests per second. */
  readonly ratePerSecond: number;
  /** Bucket size: how many may arrive at once. */
  readonly burst: number;
}

/** Token bucket per caller. Returns 0 when admitted, else the seconds until a token is due. */
export class CallerRateLimiter {
  /** Least recently used first (a bucket is re-inserted on every take). */
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly limit: RateLimit;
  private readonly maxBuckets: number;

  /**
   * State stays bounded: a bucket that has refilled is the same as none and is dropped, and
   * beyond `maxBuckets` keys (say, a flood from many addresses) the least recently used bucket
   * is dropped even if not yet full, which gives that key a fresh burst rather than memory.
   */
  constructor(limit: RateLimit, maxBuckets = 100_000) {
    this.limit = limit;
    this.maxBuckets = maxBuckets;
  }

  get size(): number {
    return this.buckets.size;
  }

  take(caller: string, nowMs: number): number {
    this.#evict(nowMs); // first: a refilled bucket dropped here is recreated full just below
    const b = this.buckets.get(caller) ?? { tokens: this.limit.burst, at: nowMs };
    b.tokens = Math.min(this.limit.burst, b.tokens + ((nowMs - b.at) / 1000) * this.limit.ratePerSecond);
    b.at = nowMs;
    this.buckets.delete(caller);
    this.buckets.set(caller, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.limit.ratePerSecond));
  }

  #evict(nowMs: number): void {
    for (const [key, b] of this.buckets) {
      const refilled = b.tokens + ((nowMs - b.at) / 1000) * this.limit.ratePerSecond >= this.limit.burst;
      if (!refilled && this.buckets.size < this.maxBuckets) break;
      this.buckets.delete(key);
    }
  }
}
