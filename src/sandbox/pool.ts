/**
 * SandboxPool: a fixed set of worker threads running actions in fresh single-use instances.
 * Each worker pre-instantiates the next instance right after every run and says `ready`; new
 * work goes to ready workers first, so instantiation stays off the request path whenever one
 * is idle. When none is idle, a busy worker gets the next action queued behind its current one,
 * so it starts that action the moment it is done instead of waiting for the main thread to see
 * its result and answer (the main thread is often busy then: signing receipts, verifying
 * requests). The pool takes a queued action back for a worker that goes idle sooner, or when
 * its worker is terminated; see signal.ts for the claim that makes this race-free. Limits are
 * enforced from here: a watchdog terminates and replaces a worker whose run
 * overruns `timeout_ms`, and a CPU sampler does the same when the worker thread's CPU time for
 * the run passes `cpu_ms`. A crashed worker is replaced too, and the pool keeps serving.
 */
import { MessageChannel, Worker, type MessagePort, type ResourceLimits } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { AttexError } from '../errors/index.ts';
import { SandboxCodes, sandboxError } from './errors.ts';
import { type HostRunContext, type HostUsage, type SecretSource, handleHostCall } from './host.ts';
import { type Resolver, systemResolver } from './http.ts';
import type { KvStore } from './kv.ts';
import type { LoadedComponent } from './loader.ts';
import type { Grants, Limits } from './manifest.ts';
import type { HostRequest, LogEntry, MainToWorker, RunError, RunReply, WorkerToMain } from './protocol.ts';
import { CLAIM_WORDS, SIGNAL, SIGNAL_BYTES, signalViews } from './signal.ts';

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
  /** Wall-clock allowance after `timeout_ms` before the watchdog terminates a worker (default 50 ms). */
  readonly watchdogGraceMs?: number;
  /** Maximum input size in bytes (default 1 MiB). */
  readonly maxInputBytes?: number;
  /**
   * Actions the pool may queue behind a busy worker's run, taken back for a worker that goes
   * idle first (default 2; 0 turns queueing off; at most 3).
   */
  readonly queueDepth?: number;
  /** V8 heap limits of each worker (default: workerHeapLimits(2048)). WebAssembly memory is capped per manifest instead. */
  readonly workerResourceLimits?: ResourceLimits;
}

/** Counters for metrics and tests. */
export interface PoolStats {
  readonly size: number;
  readonly busy: number;
  /** Actions waiting, in the pool or queued in a busy worker. */
  readonly queued: number;
  /** Workers terminated by the watchdog or CPU sampler, or crashed, and replaced. */
  readonly workersReplaced: number;
}

interface Job {
  readonly name: string;
  readonly input: string;
  readonly options: RunOptions;
  readonly resolve: (r: RunResult) => void;
}

interface ActiveJob {
  readonly job: Job;
  readonly runId: number;
  readonly host: HostRunContext;
  /** Aborts `host.ended` when the run's result is delivered. */
  readonly ended: AbortController;
  readonly start: number;
  readonly component: LoadedComponent;
  watchdog: NodeJS.Timeout;
  cpuTimer: NodeJS.Timeout | undefined;
}

/** An action posted to a busy worker, not yet known (to the main thread) to have started. */
interface QueuedJob {
  readonly job: Job;
  readonly runId: number;
  /** Index of its claim word in the slot's signal. */
  readonly claim: number;
  readonly component: LoadedComponent;
}

interface Slot {
  worker: Worker;
  port: MessagePort;
  signal: Int32Array;
  cpuStart: Float64Array;
  job: ActiveJob | undefined;
  /** Actions posted behind `job`, in the order the worker will reach them. */
  queued: QueuedJob[];
  warmTimer: NodeJS.Timeout | undefined;
  registrations: Map<string, Array<() => void>>;
  dead: boolean;
}

/**
 * V8 heap limits for a worker whose JS heap may use `heapMb` (guest memory is WebAssembly
 * memory, capped per manifest, not counted here).
 * - The old generation gets the cap. V8 also scales by it how far the old generation may grow
 *   between full collections, and every fresh instance leaves ~100 KiB there: at 256 MiB a
 *   worker collected at ~2x its ~6 MiB live heap (every ~30 actions), at 2 GiB at 3-7x (~3x
 *   fewer full collections). The heap itself stays under ~50 MiB either way.
 * - The young generation is pinned to 1/8 of the cap (4-32 MiB): left to V8, a worker whose heap
 *   filled up under a small cap aborted the whole process instead of dying alone. At 2 GiB,
 *   pinned and unpinned pools measured within the machine's noise of each other.
 */
export function workerHeapLimits(heapMb: number): ResourceLimits {
  return { maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: Math.min(32, Math.max(4, heapMb >> 3)) };
}

const DEFAULT_RESOURCE_LIMITS: ResourceLimits = workerHeapLimits(2048);
const DEFAULT_QUEUE_DEPTH = 2;
/** Registration's floor on its time limit: compiling a component's glue is part of it. */
const REGISTER_MIN_MS = 5_000;
/** Shortest interval between two CPU samples of a running worker. */
const MIN_CPU_SAMPLE_MS = 5;

const WORKER_URL = new URL('./worker.ts', import.meta.url);
/** Why a run's `ended` signal fired: its result was delivered. */
const RUN_ENDED = Object.freeze(new Error('the run has ended'));

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
  readonly #resourceLimits: ResourceLimits;
  readonly #queueDepth: number;
  #nextRunId = 1;
  #replaced = 0;
  #closed = false;

  private constructor(options: PoolOptions) {
    this.#resolver = options.resolver ?? systemResolver;
    this.#grace = options.watchdogGraceMs ?? 50;
    this.#maxInput = options.maxInputBytes ?? 1 << 20;
    this.#resourceLimits = options.workerResourceLimits ?? DEFAULT_RESOURCE_LIMITS;
    this.#queueDepth = Math.max(0, Math.min(options.queueDepth ?? DEFAULT_QUEUE_DEPTH, CLAIM_WORDS - 1));
  }

  static async create(options: PoolOptions = {}): Promise<SandboxPool> {
    const pool = new SandboxPool(options);
    for (const c of options.components ?? []) pool.#components.set(c.name, c);
    const size = Math.max(1, Math.min(options.size ?? Math.max(1, availableParallelism() - 1), 64));
    for (let i = 0; i < size; i++) pool.#slots.push(pool.#spawn());
    try {
      await Promise.all(pool.#slots.map((s) => pool.#registerAll(s)));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /** Registered actions: name -> digest and manifest. */
  get components(): ReadonlyMap<string, LoadedComponent> {
    return this.#components;
  }

  /** Actions the pool takes without waiting in its own queue: one running and `queueDepth` queued per worker. */
  get capacity(): number {
    return this.#slots.length * (1 + this.#queueDepth);
  }

  get stats(): PoolStats {
    return {
      size: this.#slots.length,
      busy: this.#slots.filter((s) => s.job !== undefined).length,
      queued: this.#slots.reduce((n, s) => n + s.queued.length, this.#queue.length),
      workersReplaced: this.#replaced,
    };
  }

  /** CPU time (µs) the live worker threads have used since they started; for benchmarks and metrics. */
  async workerCpuMicros(): Promise<number> {
    const usages = await Promise.all(this.#slots.map((s) => s.worker.cpuUsage().catch(() => ({ user: 0, system: 0 }))));
    return usages.reduce((sum, u) => sum + u.user + u.system, 0);
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
    const closed = { code: SandboxCodes.poolClosed, message: 'the sandbox pool closed' };
    for (const job of this.#queue.splice(0)) unrun(job, closed);
    await Promise.all(this.#slots.map(async (s) => {
      s.dead = true;
      clearTimeout(s.warmTimer);
      for (const q of s.queued.splice(0)) unrun(q.job, closed, q.component.digest);
      for (const waiters of s.registrations.values()) for (const done of waiters) done();
      if (s.job) this.#finish(s, { ok: false, error: closed });
      s.port.close();
      await s.worker.terminate();
    }));
  }

  #spawn(): Slot {
    const { port1, port2 } = new MessageChannel();
    const sab = new SharedArrayBuffer(SIGNAL_BYTES);
    const worker = new Worker(WORKER_URL, {
      workerData: { hostPort: port2, signal: sab },
      transferList: [port2],
      resourceLimits: this.#resourceLimits,
      stdout: true,
      stderr: true,
    });
    const { ints, cpuStart } = signalViews(sab);
    const slot: Slot = { worker, port: port1, signal: ints, cpuStart, job: undefined, queued: [], warmTimer: undefined, registrations: new Map(), dead: false };
    worker.on('message', (msg: WorkerToMain) => {
      if (msg.type === 'result') this.#onResult(slot, msg);
      else if (msg.type === 'host') void this.#onHostRequest(slot, msg);
      else if (msg.type === 'registered') this.#onRegistered(slot, msg.key);
    });
    const onDeath = (why: string) => {
      if (slot.dead) return;
      this.#kill(slot, { code: SandboxCodes.workerCrashed, message: `sandbox worker died: ${why}` });
    };
    worker.on('error', (e) => onDeath(String((e as { code?: unknown }).code ?? e.message).slice(0, 200)));
    worker.on('exit', (code) => onDeath(`exit code ${code}`));
    return slot;
  }

  /** End a worker: fail its run (if any) with `error`, terminate it and start a replacement. */
  #kill(slot: Slot, error: RunError): void {
    if (slot.dead) return;
    slot.dead = true;
    clearTimeout(slot.warmTimer);
    // Queued actions not started go back to the front of the queue, in order. One started
    // (claimed) ran, or ran partly, so running it again could repeat its effects: it fails.
    const requeue: Job[] = [];
    for (const q of slot.queued.splice(0)) {
      if (reclaim(slot, q)) requeue.push(q.job);
      else unrun(q.job, { code: SandboxCodes.workerCrashed, message: `the sandbox worker ended (${error.code}) before this action's result reached the pool` }, q.component.digest);
    }
    this.#queue.unshift(...requeue);
    if (slot.job) this.#finish(slot, { ok: false, error });
    for (const waiters of slot.registrations.values()) for (const done of waiters) done();
    slot.registrations.clear();
    slot.port.close();
    void slot.worker.terminate();
    if (!this.#closed) this.#replaced++;
    this.#replace(slot);
  }

  #replace(dead: Slot): void {
    if (this.#closed) return;
    const i = this.#slots.indexOf(dead);
    if (i < 0) return;
    const fresh = this.#spawn();
    this.#slots[i] = fresh;
    // A component that no longer instantiates in time is dropped (see #registerOne); the rest serve.
    void this.#registerAll(fresh).catch(() => undefined).then(() => this.#dispatch());
  }

  #registerAll(slot: Slot): Promise<void> {
    return Promise.all([...this.#components.values()].map((c) => this.#registerOne(slot, c))).then(() => undefined);
  }

  /**
   * Registration instantiates the component once (the worker's warm instance), in the worker and
   * out of any run's watchdog: it is held to the component's time limit (at least
   * REGISTER_MIN_MS, which also covers compiling its glue). A component whose instantiation does
   * not end in time (a start function that loops, huge tables) is dropped from the pool, the
   * worker is replaced, and the registration fails with `sandbox.instantiate-timeout`.
   */
  #registerOne(slot: Slot, component: LoadedComponent): Promise<void> {
    if (slot.dead) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const key = component.payload.key;
      const limit = Math.max(component.manifest.limits.timeout_ms, REGISTER_MIN_MS);
      const timer = setTimeout(() => {
        reject(sandboxError(SandboxCodes.instantiateTimeout, `component ${component.name} did not instantiate within ${limit} ms (a start function that never returns, or tables too large); it was not deployed`));
        if (this.#components.get(component.name) === component) this.#components.delete(component.name);
        this.#kill(slot, { code: SandboxCodes.instantiateTimeout, message: `component ${component.name} did not instantiate within ${limit} ms` });
      }, limit);
      const waiters = slot.registrations.get(key) ?? [];
      waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
      slot.registrations.set(key, waiters);
      slot.worker.postMessage({ type: 'register', component: component.payload } satisfies MainToWorker);
    });
  }

  #onRegistered(slot: Slot, key: string): void {
    const waiters = slot.registrations.get(key);
    if (!waiters) return;
    waiters.shift()?.();
    if (waiters.length === 0) slot.registrations.delete(key);
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      // A worker with a warm instance first (flag in shared memory: no message per run); a
      // re-warming one only when none is ready (its run then waits for the warm-up); else queue
      // the action behind the run that started longest ago.
      const slot = this.#idleSlot() ?? this.#slotToQueueBehind();
      if (!slot) return;
      const job = this.#queue.shift()!;
      const component = this.#components.get(job.name);
      if (!component) {
        unrun(job, { code: SandboxCodes.unknownAction, message: `no action named '${job.name}'` });
        continue;
      }
      if (slot.job) this.#queueBehind(slot, job, component);
      else this.#start(slot, job, component, this.#takeRunId(), false);
    }
    // A worker that went idle takes over an action still queued behind another worker's run,
    // which may be a long one.
    for (let idle = this.#idleSlot(); idle; idle = this.#idleSlot()) {
      // The last one queued: the others may be about to start. A failed reclaim means that
      // worker already started it, and its result is on the way.
      const owner = this.#slots.find((s) => !s.dead && s.queued.length > 0 && reclaim(s, s.queued.at(-1)!));
      if (!owner) return;
      const taken = owner.queued.pop()!;
      this.#start(idle, taken.job, taken.component, this.#takeRunId(), false);
    }
  }

  #idleSlot(): Slot | undefined {
    return this.#slots.find((s) => !s.job && !s.dead && Atomics.load(s.signal, SIGNAL.ready) === 1) ?? this.#slots.find((s) => !s.job && !s.dead);
  }

  #slotToQueueBehind(): Slot | undefined {
    let best: Slot | undefined;
    for (const s of this.#slots) {
      if (!s.job || s.dead || s.queued.length >= this.#queueDepth || freeClaim(s) === undefined) continue;
      if (!best || s.queued.length < best.queued.length || (s.queued.length === best.queued.length && s.job.start < best.job!.start)) best = s;
    }
    return best;
  }

  /** Run ids are stored in an Int32Array: they wrap before 2^31 (ids only need to differ per worker). */
  #takeRunId(): number {
    const id = this.#nextRunId;
    this.#nextRunId = id >= 0x7fffffff ? 1 : id + 1;
    return id;
  }

  /** Post `job` to a busy worker; the worker claims it when its current run is done. */
  #queueBehind(slot: Slot, job: Job, component: LoadedComponent): void {
    const runId = this.#takeRunId();
    const claim = freeClaim(slot)!;
    slot.queued.push({ job, runId, claim, component });
    Atomics.store(slot.signal, claim, runId);
    this.#post(slot, job, component, runId, claim);
  }

  /** The worker's run finished and it has moved on to the action queued behind it. */
  #promote(slot: Slot): void {
    const next = slot.queued.shift()!;
    this.#start(slot, next.job, next.component, next.runId, true);
  }

  /** Make `job` the slot's run: host context, watchdog and CPU sampler; post it unless it already was. */
  #start(slot: Slot, job: Job, component: LoadedComponent, runId: number, posted: boolean): void {
    const { grants, limits } = component.manifest;
    const start = performance.now();
    clearTimeout(slot.warmTimer); // the run's own watchdog covers a warm-up that never ends
    const ended = new AbortController();
    const host: HostRunContext = {
      grants, limits, deadline: start + limits.timeout_ms, secrets: job.options.secrets, kv: job.options.kv,
      resolver: this.#resolver, usage: { hostsContacted: [], secretsUsed: [], secretsRevealed: [], kvOps: [] }, ended: ended.signal, calls: { count: 0 },
    };
    const watchdog = setTimeout(() => {
      if (slot.job?.runId === runId) this.#kill(slot, { code: SandboxCodes.timeout, message: `time limit of ${limits.timeout_ms} ms exceeded; worker replaced` });
    }, limits.timeout_ms + this.#grace);
    // A thread cannot use more CPU than wall time, so nothing to sample before cpu_ms has passed,
    // and nothing at all when the wall-clock limit comes first.
    const cpuTimer = limits.cpu_ms < limits.timeout_ms ? setTimeout(() => void this.#sampleCpu(slot, runId), limits.cpu_ms) : undefined;
    slot.job = { job, runId, host, ended, start, watchdog, cpuTimer, component };
    if (!posted) this.#post(slot, job, component, runId, undefined);
  }

  #post(slot: Slot, job: Job, component: LoadedComponent, runId: number, claim: number | undefined): void {
    const { grants, limits } = component.manifest;
    const config = grants.config.filter((k) => job.options.config?.[k] !== undefined).map((k) => [k, job.options.config![k]!] as const);
    slot.worker.postMessage({ type: 'run', runId, claim, key: component.payload.key, input: job.input, grants: grants as Grants, limits: limits as Limits, config } satisfies MainToWorker);
  }

  /** Compare the worker thread's CPU time since its run started with `cpu_ms`; terminate on overrun. */
  async #sampleCpu(slot: Slot, runId: number): Promise<void> {
    const active = slot.job;
    if (!active || active.runId !== runId || slot.dead) return;
    const cpuMs = active.component.manifest.limits.cpu_ms;
    // Not started yet (the worker is finishing a warm-up): look again shortly.
    let usedMs = cpuMs - MIN_CPU_SAMPLE_MS;
    if (Atomics.load(slot.signal, SIGNAL.runId) === runId) {
      let now;
      try {
        now = await slot.worker.cpuUsage();
      } catch {
        return; // the worker is gone; its exit handler reports the run
      }
      if (slot.job?.runId !== runId || slot.dead) return;
      usedMs = (now.user + now.system - slot.cpuStart[0]!) / 1000;
      if (usedMs > cpuMs) {
        this.#kill(slot, { code: SandboxCodes.cpu, message: `used more than ${cpuMs} ms of CPU (${Math.round(usedMs)} ms); worker replaced` });
        return;
      }
    }
    active.cpuTimer = setTimeout(() => void this.#sampleCpu(slot, runId), Math.max(MIN_CPU_SAMPLE_MS, cpuMs - usedMs));
  }

  async #onHostRequest(slot: Slot, req: HostRequest): Promise<void> {
    const active = slot.job;
    if (!active || active.runId !== req.runId) return;
    // The earlier of the two deadlines: the worker's can only shorten the host's.
    const workerDeadline = typeof req.deadline === 'number' ? req.deadline - performance.timeOrigin : NaN;
    const host = workerDeadline < active.host.deadline ? { ...active.host, deadline: workerDeadline } : active.host;
    let result;
    try {
      result = await handleHostCall(host, req.op, req.args);
    } catch (e) {
      result = { tag: 'err' as const, val: { tag: 'other', val: 'host error' } };
      void e;
    }
    if (slot.dead || slot.job?.runId !== req.runId) return;
    slot.port.postMessage({ seq: req.seq, result });
    Atomics.store(slot.signal, SIGNAL.hostReply, 1);
    Atomics.notify(slot.signal, SIGNAL.hostReply);
  }

  #onResult(slot: Slot, reply: RunReply): void {
    if (slot.job?.runId !== reply.runId) return;
    const limits = slot.job.component.manifest.limits;
    this.#finish(slot, reply);
    // The worker moves on to the first action queued behind this run (claimed, or about to be:
    // a promoted action is no longer taken back).
    if (slot.queued.length > 0) return this.#promote(slot);
    // A warm-up that never ends (e.g. a start function that loops) must not park the worker.
    clearTimeout(slot.warmTimer);
    slot.warmTimer = setTimeout(() => {
      if (!slot.job && Atomics.load(slot.signal, SIGNAL.ready) === 0) this.#kill(slot, { code: SandboxCodes.timeout, message: 'instantiation did not finish' });
    }, limits.timeout_ms + this.#grace);
  }

  #finish(slot: Slot, reply: { ok: boolean; output?: string; error?: RunError; usage?: RunReply['usage'] }): void {
    const active = slot.job;
    if (!active) return;
    clearTimeout(active.watchdog);
    clearTimeout(active.cpuTimer);
    slot.job = undefined;
    // A shared reason: abort() without one builds a DOMException with a stack trace, ~3% of the
    // main thread's time per action under load.
    active.ended.abort(RUN_ENDED);
    const { wallMs, ...workerUsage } = reply.usage ?? { wallMs: undefined };
    // Copies: a host call still unwinding must not change a result already handed out.
    const h = active.host.usage;
    const usage: ActionUsage = {
      ...emptyUsage(), ...workerUsage,
      hostsContacted: [...h.hostsContacted], secretsUsed: [...h.secretsUsed], secretsRevealed: [...h.secretsRevealed], kvOps: [...h.kvOps],
    };
    const result: RunResult = {
      ok: reply.ok,
      ...(reply.output !== undefined ? { output: reply.output } : {}),
      ...(reply.error !== undefined ? { error: reply.error } : {}),
      usage,
      // The worker's own figure when it answered: a queued action may have started, even
      // finished, before the main thread saw the run ahead of it end.
      durationMs: wallMs ?? Math.round((performance.now() - active.start) * 1000) / 1000,
      component: { name: active.component.name, digest: active.component.digest },
    };
    active.job.resolve(result);
    queueMicrotask(() => this.#dispatch());
  }
}

/**
 * A claim word not in use. There is one while fewer than CLAIM_WORDS - 1 actions are queued:
 * only the one the worker is moving on to may still hold a word besides them.
 */
function freeClaim(slot: Slot): number | undefined {
  for (let w = SIGNAL.firstClaim; w < SIGNAL.firstClaim + CLAIM_WORDS; w++) if (Atomics.load(slot.signal, w) === 0) return w;
  return undefined;
}

/** Take a queued action back from a worker that has not started it; false if it has. */
function reclaim(slot: Slot, next: QueuedJob): boolean {
  return Atomics.compareExchange(slot.signal, next.claim, next.runId, 0) === next.runId;
}

/** Answer a job that never reached a worker. */
function unrun(job: Job, error: RunError, digest = ''): void {
  job.resolve({ ok: false, error, usage: emptyUsage(), durationMs: 0, component: { name: job.name, digest } });
}

export function assertPoolOpen(pool: SandboxPool | undefined): asserts pool is SandboxPool {
  if (!pool) throw new AttexError(SandboxCodes.poolClosed, 'no sandbox pool');
}
