/**
 * Idempotency: a retried request with the same (caller, Idempotency-Key) must not run again.
 *
 * The invocation id of such a request is derived from (executor, caller, key), so the log itself
 * remembers every keyed invocation across restarts (the ledger indexes entries by invocation
 * id). This bounded in-memory table additionally keeps recent results (with their outputs) and
 * joins concurrent duplicates to the first request's run.
 */
import { createHash } from 'node:crypto';
import type { DispatchResult } from './service.ts';

/** A UUIDv8 (RFC 9562, custom) from SHA-256 over the idempotency scope. */
export function idempotentInvocationId(executorId: string, callerId: string, key: string): string {
  const b = createHash('sha256').update(`attex-idempotency/1\u0000${executorId}\u0000${callerId}\u0000${key}`).digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x80;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

interface Entry {
  /** The action and the SHA-256 hex of the request body: a reused key with another of either is a conflict. */
  readonly action: string;
  readonly inputDigest: string;
  /** The run's result; once it is in, rebuilt on each call from what the table keeps (see begin). */
  result: Promise<DispatchResult>;
  /**
   * Bytes charged against the table once the result is in; 0 while in flight. Until then the
   * entry is the only thing that stops a retry from running the action again (the log learns
   * the key only when the receipt is appended), so it is never evicted.
   */
  bytes: number;
}

/** `result` with its output back in the schema's member order (after outcome), as it was sent. */
function withOutput(result: Omit<DispatchResult, 'output'>, output: unknown): DispatchResult {
  const { invocationId, outcome, ...after } = result;
  return { invocationId, outcome, output, ...after };
}

export class IdempotencyTable {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  #bytes = 0;

  constructor(maxEntries = 100_000, maxBytes = 64 << 20) {
    this.#maxEntries = maxEntries;
    this.#maxBytes = maxBytes;
  }

  get(invocationId: string): Entry | undefined {
    return this.#entries.get(invocationId);
  }

  /** Record an in-flight request; a failed run (no receipt) is forgotten so a retry may run. */
  begin(invocationId: string, action: string, inputDigest: string, result: Promise<DispatchResult>): void {
    const entry: Entry = { action, inputDigest, result, bytes: 0 };
    this.#entries.set(invocationId, entry);
    result.then(
      (r) => {
        if (this.#entries.get(invocationId) !== entry) return;
        let outputJson: string | undefined;
        try {
          outputJson = r.output === undefined ? undefined : JSON.stringify(r.output);
        } catch {
          // Not expected (outputs are held to MAX_OUTPUT_DEPTH), but nothing here may reject
          // unhandled: forget the result; the log still answers a retry with its receipt.
          this.#entries.delete(invocationId);
          return;
        }
        // The output is kept as its JSON text, which is what the table charges for: a parsed
        // object of many small members takes many times its text in memory.
        const { output: _output, ...rest } = r;
        Object.defineProperty(entry, 'result', {
          get: () => Promise.resolve(outputJson === undefined ? rest : withOutput(rest, JSON.parse(outputJson))),
        });
        entry.bytes = 256 + r.receipt.length + r.proof.length + (outputJson?.length ?? 0);
        this.#bytes += entry.bytes;
        this.#evict();
      },
      () => {
        if (this.#entries.get(invocationId) === entry) this.#entries.delete(invocationId);
      },
    );
  }

  #evict(): void {
    for (const [id, e] of this.#entries) {
      if (this.#entries.size <= this.#maxEntries && this.#bytes <= this.#maxBytes) break;
      if (e.bytes === 0) continue; // in flight
      this.#entries.delete(id);
      this.#bytes -= e.bytes;
    }
  }
}
