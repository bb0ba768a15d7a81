/** Messages between the pool (main thread) and its workers. Structured-clone friendly only. */
import type { Grants, Limits } from './manifest.ts';
import type { MemoryType } from './wasm-memory.ts';

export interface ComponentPayload {
  /** Registry key: `<name>@<digest>` (the same binary may load under two manifests). */
  readonly key: string;
  readonly digest: string;
  readonly name: string;
  /** Transpiled instantiation code wrapped as a factory expression (see loader.ts). */
  readonly factorySource: string;
  readonly modules: Record<string, WebAssembly.Module>;
  /** Modules whose own memory was turned into an import, with its type (memory-lease.ts). */
  readonly memoryImports: Record<string, MemoryType>;
  /** Linear memories each module defines (imported or not), for the per-instantiation bound. */
  readonly definedMemories: Record<string, number>;
  readonly imports: readonly string[];
  readonly memoryCapBytes: number;
  readonly limits: Limits;
}

export interface RunRequest {
  readonly type: 'run';
  readonly runId: number;
  /** Set when sent while the worker was busy: the index of the word to claim before running it. */
  readonly claim: number | undefined;
  readonly key: string;
  readonly input: string;
  readonly grants: Grants;
  readonly limits: Limits;
  /** Granted configuration entries only. */
  readonly config: ReadonlyArray<readonly [string, string]>;
}

export interface LogEntry {
  readonly level: string;
  readonly context: string;
  readonly message: string;
}

/** What the worker itself observed; the pool merges it with what the host handler recorded. */
export interface WorkerUsage {
  hostCalls: number;
  logs: LogEntry[];
  configRead: string[];
  denied: string[];
  stdioBytes: number;
  cpuMs: number;
  memoryBytes: number;
  /** Wall time of the run in the worker (the pool may see its result later). */
  wallMs: number;
}

export interface RunError {
  readonly code: string;
  readonly message: string;
}

export interface RunReply {
  readonly type: 'result';
  readonly runId: number;
  readonly ok: boolean;
  readonly output?: string;
  readonly error?: RunError;
  readonly usage: WorkerUsage;
}

export type HostOp =
  | 'http.fetch'
  | 'secret.open'
  | 'secret.hmac'
  | 'secret.reveal'
  | 'kv.get'
  | 'kv.set'
  | 'kv.delete'
  | 'kv.exists'
  | 'kv.list';

/**
 * Sent on the worker's parent port, like results, so the pool sees a run's host calls after the
 * result of the run before it (a worker may start a queued action before the pool has seen
 * that result). Replies come back on the dedicated host port, which the worker reads
 * synchronously.
 */
export interface HostRequest {
  readonly type: 'host';
  readonly seq: number;
  readonly runId: number;
  readonly op: HostOp;
  readonly args: readonly unknown[];
  /** The run's deadline on the worker's clock, as epoch milliseconds (timeOrigin + now). */
  readonly deadline: number;
}

/** `result` is the WIT result as jco expects it from a host function: `{ tag: 'ok' | 'err', val }`. */
export interface HostReply {
  readonly seq: number;
  readonly result: { tag: 'ok' | 'err'; val?: unknown };
}

export type MainToWorker = { type: 'register'; component: ComponentPayload } | RunRequest | { type: 'unregister'; key: string };
export type WorkerToMain = RunReply | HostRequest | { type: 'registered'; key: string };
