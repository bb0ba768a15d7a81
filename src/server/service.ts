/**
 * What the HTTP layer needs from the executor. The fastify app (app.ts) depends only on this, so
 * routing, authentication and admission are testable apart from attestation and the sandbox.
 */
import type { VerifiedRequestSignature } from '../httpsig/index.ts';

export interface Caller {
  readonly id: string;
  /** Actions this caller may run; '*' grants all. */
  readonly actions: readonly string[];
}

export interface DispatchRequest {
  readonly action: string;
  /** The request body bytes exactly as received (their digest goes into the receipt). */
  readonly inputBytes: Uint8Array;
  readonly input: unknown;
  readonly caller: Caller;
  readonly signature?: VerifiedRequestSignature;
  readonly authMethod: 'http-signature' | 'bearer-dev';
  readonly idempotencyKey?: string;
  /**
   * Admission control for the sandbox run: the service runs the action inside `admit` (which
   * may refuse with server.overloaded) and signs and logs the receipt outside it, so a slot
   * is held only while the sandbox works. Absent: no admission control.
   */
  readonly admit?: <T>(task: () => Promise<T>) => Promise<T>;
}

export interface DispatchResult {
  readonly invocationId: string;
  readonly outcome: 'ok' | 'error';
  /** The action's JSON output; absent on error, and on a replay whose output is no longer held. */
  readonly output?: unknown;
  readonly error?: { readonly code: string; readonly message: string };
  /** base64 of the exact DSSE envelope bytes that are the log entry. */
  readonly receipt: string;
  readonly logIndex: number;
  /** c2sp.org/tlog-proof@v1 text for the entry at the checkpoint that followed the append. */
  readonly proof: string;
  /** True when this is the stored result of an earlier request with the same idempotency key. */
  readonly replayed: boolean;
}

export interface Readiness {
  readonly ready: boolean;
  readonly checks: Readonly<Record<string, boolean>>;
}

export interface ExecutorService {
  readiness(): Readiness;
  hasAction(name: string): boolean;
  dispatch(req: DispatchRequest): Promise<DispatchResult>;
  /** A bundle ready for `attex verify`, or undefined when no such invocation is logged. */
  receiptBundle(invocationId: string): Promise<unknown | undefined>;
  /** The attestation record of this boot (envelope, log index, proof, summary). */
  attestationRecord(): Promise<unknown>;
  logCheckpoint(): string;
  /** Bytes of a tlog-tiles path under /v1/log/ (e.g. `tile/0/000`), or undefined. */
  logTile(path: string): Promise<Uint8Array | undefined>;
  poolStats(): { running: number; queued: number };
  ledgerSize(): number;
}
