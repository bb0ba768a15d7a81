/**
 * SandboxPool: a fixed set of worker threads running actions in fresh single-use instances.
 * Each worker pre-instantiates the next instance after every run, so instantiation stays off
 * the request path. A watchdog terminates and replaces any worker that overruns its run's time
 * limit; a crashed worker is replaced too, and the pool keeps serving.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { AttexError } from '../errors/index.ts';
import { SandboxCodes } from './errors.ts';
import { type HostRunContext, type HostUsage, type SecretSource, handleHostCall } from './host.ts';
import { type Resolver, systemResolver } from './http.ts';
import type { KvStore } from './kv.ts';
import type { LoadedComponent } from './loader.ts';
import type { Grants, Limits } from './manifest.ts';
import type { HostRequest, LogEntry, MainToWorker, RunError, RunReply, WorkerToMain } from './protocol.ts';

export interface RunOptions {
  readonly secrets?: SecretSource;
  readonly kv?: KvStore;
  /** Configuration values; only keys the manifest grants reach the component. */
  readonly config?: Readonly<Record<string, string>>;
}

export interface ActionUsage extends HostUsage {
  hostCalls: number;
  configRead: string[];
  denied: string[];
  logs: LogEntry[];
  stdioBytes: number;
  cpuMs: number;
  memoryBytes: number;
}

export interface RunResult {
  readonly ok: boolean;
  readonly output?: string;
  readonly error?: RunError;
  readonly usage: ActionUsage;
  readonly durationMs: number;
  readonly component: { readonly name: string; readonly digest: string };
}

export interface PoolOptions {
  readonly size?: number;
  readonly components?: readonly LoadedComponent[];
  /** DNS resolution for outbound HTTP (tests inject one; default: the system resolver). */
  readonly resolver?: Resolver;
  /** Extra wall-clock allowance before the watchdog kills a worker (default 250 ms). */
  readonly watchdogGraceMs?: number;
  /** Maximum input size in bytes (default 1 MiB). */
  readonly maxInputBytes?: number;
}

interface Job {
  readonly name: string;
  readonly input: string;
  readonly options: RunOptions;
  readonly resolve: (r: RunResult) => void;
}

interface Slot {
  worker: Worker;
  port: MessagePort;
  signal: Int32Array;
  job: { job: Job; runId: number; host: HostRunContext; start: number; watchdog: NodeJS.Timeout; component: LoadedComponent } | undefined;
  dead: boolean;
}

const WORKER_URL = new URL('./worker.ts', import.meta.url);

function emptyUsage(): ActionUsage {
  return { hostCalls: 0, hostsContacted: [], secretsUsed: [], secretsRevealed: [], kvOps: [], configRead: [], denied: [], logs: [], stdioBytes: 0, cpuMs: 0, memoryBytes: 0 };
}

export class SandboxPool {
  readonly #components = new Map<string, LoadedComponent>();
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  readonly #resolver: Resolver;
  readonly #grace: number;
  readonly #maxInput: number;
  #nextRunId = 1;
  #closed = false;

  private constructor(options: PoolOptions) {
    this.#resolver = options.resolver ?? systemResolver;
    this.#grace = options.watchdogGraceMs ?? 250;
    this.#maxInput = options.maxInputBytes ?? 1 << 20;
  }

  static async create(options: PoolOptions = {}): Promise<SandboxPool> {
    const pool = new SandboxPool(options);
    for (const c of options.components ?? []) pool.#components.set(c.name, c);
    const size = Math.max(1, Math.min(options.size ?? Math.max(1, availableParallelism() - 1), 64));
    for (let i = 0; i < size; i++) pool.#slots.push(pool.#spawn());
    await Promise.all(pool.#slots.map((s) => pool.#registerAll(s)));
    return pool;
  }

  /** Registered actions: name -> digest and manifest. */
  get components(): ReadonlyMap<string, LoadedComponent> {
    return this.#components;
  }

  /** Add (or replace) a component; resolves once every worker has it. */
  async register(component: LoadedComponent): Promise<void> {
    const previous = this.#components.get(component.name);
    this.#components.set(component.name, component);
    await Promise.all(this.#slots.map((s) => {
      if (previous && previous.payload.key !== component.payload.key) s.worker.postMessage({ type: 'unregister', key: previous.payload.key } satisfies MainToWorker);
      return this.#registerOne(s, component);
    }));
  }

  run(actionName: string, inputJson: string, options: RunOptions = {}): Promise<RunResult> {
    return new Promise((resolve) => {
      const component = this.#components.get(actionName);
      const fail = (code: string, message: string) =>
        resolve({ ok: false, error: { code, message }, usage: emptyUsage(), durationMs: 0, component: { name: actionName, digest: component?.digest ?? '' } });
      if (this.#closed) return fail(SandboxCodes.poolClosed, 'the sandbox pool is closed');
      if (!component) return fail(SandboxCodes.unknownAction, `no action named '${String(actionName).slice(0, 64)}'`);
      if (typeof inputJson !== 'string' || Buffer.byteLength(inputJson) > this.#maxInput) return fail(SandboxCodes.invalidInput, 'input is not a string within the size limit');
      try {
        JSON.parse(inputJson);
      } catch {
        return fail(SandboxCodes.invalidInput, 'input is not valid JSON');
      }
      this.#queue.push({ name: actionName, input: inputJson, options, resolve });
      this.#dispatch();
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) {
      job.resolve({ ok: false, error: { code: SandboxCodes.poolClosed, message: 'the sandbox pool closed' }, usage: emptyUsage(), durationMs: 0, component: { name: job.name, digest: '' } });
    }
    await Promise.all(this.#slots.map(async (s) => {
      s.dead = true;
      if (s.job) this.#finish(s, { ok: false, error: { code: SandboxCodes.poolClosed, message: 'the sandbox pool closed' } });
      s.port.close();
      await s.worker.terminate();
    }));
  }

  #spawn(): Slot {
    const { port1, port2 } = new MessageChannel();
    const sab = new SharedArrayBuffer(4);
    const worker = new Worker(WORKER_URL, {
      workerData: { hostPort: port2, signal: sab },
      transferList: [port2],
      resourceLimits: { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 32 },
      stdout: true,
      stderr: true,
    });
    const slot: Slot = { worker, port: port1, signal: new Int32Array(sab), job: undefined, dead: false };
    worker.on('message', (msg: WorkerToMain) => {
      if (msg.type === 'result') this.#onResult(slot, msg);
    });
    const onDeath = (why: string) => {
      if (slot.dead) return;
      slot.dead = true;
      port1.close();
      if (slot.job) this.#finish(slot, { ok: false, error: { code: SandboxCodes.workerCrashed, message: `sandbox worker died: ${why}` } });
      this.#replace(slot);
    };
    worker.on('error', (e) => onDeath(e.message.slice(0, 200)));
    worker.on('exit', (code) => onDeath(`exit code ${code}`));
    port1.on('message', (req: HostRequest) => void this.#onHostRequest(slot, req));
    return slot;
  }

  #replace(dead: Slot): void {
    if (this.#closed) return;
    const i = this.#slots.indexOf(dead);
    if (i < 0) return;
    const fresh = this.#spawn();
    this.#slots[i] = fresh;
    void this.#registerAll(fresh).then(() => this.#dispatch());
  }

  #registerAll(slot: Slot): Promise<void> {
    return Promise.all([...this.#components.values()].map((c) => this.#registerOne(slot, c))).then(() => undefined);
  }

  #registerOne(slot: Slot, component: LoadedComponent): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        slot.worker.off('message', onMessage);
        slot.worker.off('exit', done);
        resolve();
      };
      const onMessage = (msg: WorkerToMain) => {
        if (msg.type === 'registered' && msg.key === component.payload.key) done();
      };
      slot.worker.on('message', onMessage);
      slot.worker.on('exit', done);
      slot.worker.postMessage({ type: 'register', component: component.payload } satisfies MainToWorker);
    });
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) return;
      if (slot.job || slot.dead) continue;
      const job = this.#queue.shift()!;
      const component = this.#components.get(job.name);
      if (!component) {
        job.resolve({ ok: false, error: { code: SandboxCodes.unknownAction, message: `no action named '${job.name}'` }, usage: emptyUsage(), durationMs: 0, component: { name: job.name, digest: '' } });
        continue;
      }
      this.#start(slot, job, component);
    }
  }

  #start(slot: Slot, job: Job, component: LoadedComponent): void {
    const { grants, limits } = component.manifest;
    const runId = this.#nextRunId++;
    const start = performance.now();
    const host: HostRunContext = {
      grants, limits, deadline: start + limits.timeout_ms, secrets: job.options.secrets, kv: job.options.kv,
      resolver: this.#resolver, usage: { hostsContacted: [], secretsUsed: [], secretsRevealed: [], kvOps: [] },
    };
    const watchdog = setTimeout(() => {
      if (slot.job?.runId !== runId) return;
      this.#finish(slot, { ok: false, error: { code: SandboxCodes.timeout, message: `time limit of ${limits.timeout_ms} ms exceeded; worker replaced` } });
      slot.dead = true;
      slot.port.close();
      void slot.worker.terminate();
      this.#replace(slot);
    }, limits.timeout_ms + this.#grace);
    slot.job = { job, runId, host, start, watchdog, component };
    const config = grants.config.filter((k) => job.options.config?.[k] !== undefined).map((k) => [k, job.options.config![k]!] as const);
    slot.worker.postMessage({ type: 'run', runId, key: component.payload.key, input: job.input, grants: grants as Grants, limits: limits as Limits, config } satisfies MainToWorker);
  }

  async #onHostRequest(slot: Slot, req: HostRequest): Promise<void> {
    const active = slot.job;
    if (!active || active.runId !== req.runId) return;
    let result;
    try {
      result = await handleHostCall(active.host, req.op, req.args);
    } catch (e) {
      result = { tag: 'err' as const, val: { tag: 'other', val: 'host error' } };
      void e;
    }
    if (slot.dead || slot.job?.runId !== req.runId) return;
    slot.port.postMessage({ seq: req.seq, result });
    Atomics.store(slot.signal, 0, 1);
    Atomics.notify(slot.signal, 0);
  }

  #onResult(slot: Slot, reply: RunReply): void {
    if (slot.job?.runId !== reply.runId) return;
    this.#finish(slot, reply);
  }

  #finish(slot: Slot, reply: { ok: boolean; output?: string; error?: RunError; usage?: RunReply['usage'] }): void {
    const active = slot.job;
    if (!active) return;
    clearTimeout(active.watchdog);
    slot.job = undefined;
    const usage: ActionUsage = { ...emptyUsage(), ...(reply.usage ?? {}), ...active.host.usage };
    const result: RunResult = {
      ok: reply.ok,
      ...(reply.output !== undefined ? { output: reply.output } : {}),
      ...(reply.error !== undefined ? { error: reply.error } : {}),
      usage,
      durationMs: Math.round((performance.now() - active.start) * 1000) / 1000,
      component: { name: active.component.name, digest: active.component.digest },
    };
    active.job.resolve(result);
    queueMicrotask(() => this.#dispatch());
  }
}

export function assertPoolOpen(pool: SandboxPool | undefined): asserts pool is SandboxPool {
  if (!pool) throw new AttexError(SandboxCodes.poolClosed, 'no sandbox pool');
}
