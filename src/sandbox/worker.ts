/**
 * Sandbox worker thread. Holds compiled components, keeps one pre-instantiated (warm) instance
 * per component, and runs each action in a fresh instance that is discarded afterwards.
 *
 * Wall-clock and CPU limits are enforced from the pool's main thread, which terminates this
 * thread on overrun (see pool.ts). Guest code therefore runs without a `vm` timeout: V8 starts a
 * watchdog thread for every timed `vm` call, which cost ~0.2 ms of CPU per call here (a third of
 * a whole run). Host calls that need the main thread block on a SharedArrayBuffer signal with
 * the remaining budget as the wait timeout, so a host call that never answers ends the run with
 * `sandbox.timeout` without losing the worker.
 */
import { parentPort, workerData, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import vm from 'node:vm';
import { GuestExit, engineStubs, type StdioSink } from './engine-stubs.ts';
import { type ActiveRun, SandboxAbort, capabilityImports } from './guest-imports.ts';
import { ACTION_EXPORT } from './imports-policy.ts';
import { MAX_OUTPUT_DEPTH, jsonNestsDeeperThan } from './json-depth.ts';
import { SandboxCodes } from './errors.ts';
import { type MemoryLease, MemoryLeases, memoryTypesOf } from './memory-lease.ts';
import { SIGNAL, signalViews } from './signal.ts';
import type { ComponentPayload, HostOp, HostReply, HostRequest, MainToWorker, RunError, RunReply, RunRequest, WorkerUsage } from './protocol.ts';

interface WarmInstance {
  readonly run: (input: string) => unknown;
  readonly memories: WebAssembly.Memory[];
  /** Memories lent by the entry's MemoryLeases; given back once the instance is done. */
  readonly leases: MemoryLease[];
  readonly slot: { active: ActiveRun | undefined };
}

/**
 * Per instantiation of a component. Toolchain output has 1-2 memories (the engine's and its WASI
 * adapter's) in about 10 core instances; a hostile component instantiating one module over and
 * over would otherwise get memory_mb for every copy.
 */
const MAX_LINEAR_MEMORIES = 4;
const MAX_CORE_INSTANCES = 64;

interface Entry {
  readonly payload: ComponentPayload;
  /** Module -> linear memories it defines. */
  readonly memoriesOf: ReadonlyMap<WebAssembly.Module, number>;
  readonly factory: () => InstantiateFn;
  readonly memory: MemoryLeases;
  warm: WarmInstance | undefined;
}

type InstantiateFn = (
  getCoreModule: (name: string) => WebAssembly.Module,
  imports: Record<string, unknown>,
  instantiateCore: (m: WebAssembly.Module, i: WebAssembly.Imports) => WebAssembly.Instance,
) => Record<string, unknown>;

const { hostPort, signal } = workerData as { hostPort: MessagePort; signal: SharedArrayBuffer };
const { ints, cpuStart } = signalViews(signal);
const entries = new Map<string, Entry>();
let seq = 0;

/** Synchronous request to the pool's host handler; waits at most until the run's deadline. */
function hostCall(run: ActiveRun, op: HostOp, args: unknown[]): HostReply['result'] {
  const mySeq = ++seq;
  Atomics.store(ints, SIGNAL.hostReply, 0);
  // The worker's deadline can be earlier than the host's own (an action it took from its queue
  // started before the main thread saw the previous one end): the host keeps to the earlier one.
  const deadline = performance.timeOrigin + run.deadline;
  parentPort!.postMessage({ type: 'host', seq: mySeq, runId: run.request.runId, op, args, deadline } satisfies HostRequest);
  for (;;) {
    for (let m = receiveMessageOnPort(hostPort); m !== undefined; m = receiveMessageOnPort(hostPort)) {
      const reply = m.message as HostReply;
      if (reply.seq === mySeq) return reply.result;
    }
    const remaining = run.deadline - performance.now();
    if (remaining <= 0) {
      run.abort = new SandboxAbort(SandboxCodes.timeout, `host call ${op} did not finish within the time limit`);
      throw run.abort;
    }
    Atomics.wait(ints, SIGNAL.hostReply, 0, remaining);
    Atomics.store(ints, SIGNAL.hostReply, 0);
  }
}

function unversioned(name: string): string {
  const at = name.lastIndexOf('@');
  return at < 0 ? name : name.slice(0, at);
}

function instantiate(entry: Entry): WarmInstance {
  const slot: { active: ActiveRun | undefined } = { active: undefined };
  const current = (): ActiveRun => {
    if (!slot.active) throw new SandboxAbort(SandboxCodes.trap, 'capability used outside of a run');
    return slot.active;
  };
  const sink = (): StdioSink | undefined => slot.active?.usage;
  const caps = capabilityImports(current, hostCall);
  const engine = engineStubs(sink);
  const imports: Record<string, unknown> = {};
  for (const name of entry.payload.imports) {
    const impl = (caps as Record<string, unknown>)[name] ?? engine[unversioned(name)] ?? {};
    imports[name] = impl;
    imports[unversioned(name)] = impl;
  }
  const memories: WebAssembly.Memory[] = [];
  const leases: MemoryLease[] = [];
  let instances = 0;
  let definedMemories = 0;
  const instantiateCore = (m: WebAssembly.Module, i: WebAssembly.Imports) => {
    // memory_mb caps each linear memory; bounding how many there are bounds the total.
    definedMemories += entry.memoriesOf.get(m) ?? 0;
    if (++instances > MAX_CORE_INSTANCES) throw new SandboxAbort(SandboxCodes.memory, `the component instantiates more than ${MAX_CORE_INSTANCES} core modules`);
    if (definedMemories > MAX_LINEAR_MEMORIES) throw new SandboxAbort(SandboxCodes.memory, `the component defines more than ${MAX_LINEAR_MEMORIES} linear memories (memory_mb caps each)`);
    const inst = new WebAssembly.Instance(m, entry.memory.importsFor(m, i, leases));
    for (const v of Object.values(inst.exports)) if (v instanceof WebAssembly.Memory) memories.push(v);
    return inst;
  };
  const modules = entry.payload.modules;
  try {
    const exports = entry.factory()((name) => {
      const mod = modules[name];
      if (!mod) throw new Error(`missing core module ${name}`);
      return mod;
    }, imports, instantiateCore);
    const iface = (exports[ACTION_EXPORT] ?? exports.action) as { run?: (input: string) => unknown } | undefined;
    if (!iface || typeof iface.run !== 'function') throw new Error(`component does not export ${ACTION_EXPORT}`);
    return { run: iface.run.bind(iface), memories, leases, slot };
  } catch (err) {
    entry.memory.release(leases);
    throw err;
  }
}

function memoryBytes(memories: WebAssembly.Memory[]): number {
  return memories.reduce((max, m) => Math.max(max, m.buffer.byteLength), 0);
}

/** True when a trap message says an allocation failed (QuickJS, V8 and the canonical ABI's wording). */
const ALLOCATION_FAILURE = /out of memory|could not allocate|allocation failed|memory allocation|failed to grow/i;

function classify(err: unknown, active: ActiveRun | undefined, inst: WarmInstance | undefined, capBytes: number): RunError {
  if (active?.abort) return { code: active.abort.code, message: active.abort.message };
  if (err instanceof SandboxAbort) return { code: err.code, message: err.message };
  if (err instanceof GuestExit) return { code: SandboxCodes.trap, message: err.message };
  const e = err as { message?: unknown; payload?: unknown };
  const message = String(e?.message ?? err).slice(0, 500);
  if (e && typeof e === 'object' && 'payload' in e) {
    const p = e.payload as { code?: unknown; message?: unknown } | undefined;
    if (p && typeof p === 'object') {
      return { code: SandboxCodes.actionFailed, message: `${String(p.code).slice(0, 64)}: ${String(p.message).slice(0, 1000)}` };
    }
  }
  const used = inst ? memoryBytes(inst.memories) : 0;
  // memory.grow failing is invisible to the host; a guest that trapped with less headroom left
  // than a typical allocator request (1 MiB or 1/16 of the cap) is taken to have run out.
  const atCap = capBytes > 0 && capBytes - used < Math.max(CAP_HEADROOM_BYTES, capBytes / 16);
  if (ALLOCATION_FAILURE.test(message) || atCap) {
    return { code: SandboxCodes.memory, message: `memory limit reached (${Math.round(used / 1048576)} MiB of ${Math.round(capBytes / 1048576)} MiB): ${message}` };
  }
  return { code: SandboxCodes.trap, message };
}

const CAP_HEADROOM_BYTES = 1 << 20;

function emptyUsage(): WorkerUsage {
  return { hostCalls: 0, logs: [], configRead: [], denied: [], stdioBytes: 0, cpuMs: 0, memoryBytes: 0, wallMs: 0 };
}

function threadCpuMicros(): number {
  const u = process.threadCpuUsage();
  return u.user + u.system;
}

function run(req: RunRequest): { reply: RunReply; used?: WarmInstance } {
  const entry = entries.get(req.key);
  const usage = emptyUsage();
  if (!entry) return { reply: { type: 'result', runId: req.runId, ok: false, error: { code: SandboxCodes.unknownAction, message: 'component not registered in worker' }, usage } };
  const start = performance.now();
  const cpu0 = threadCpuMicros();
  // Published for the pool's CPU sampler: the run id and this thread's CPU time at its start.
  cpuStart[0] = cpu0;
  Atomics.store(ints, SIGNAL.ready, 0);
  Atomics.store(ints, SIGNAL.runId, req.runId);
  const active: ActiveRun = { request: req, usage, deadline: start + req.limits.timeout_ms, abort: undefined };
  let inst = entry.warm;
  entry.warm = undefined;
  let reply: RunReply;
  try {
    inst ??= instantiate(entry);
    inst.slot.active = active;
    const out = inst.run(req.input);
    if (active.abort) throw active.abort;
    reply = checkOutput(req, out, usage);
  } catch (err) {
    reply = { type: 'result', runId: req.runId, ok: false, error: classify(err, active, inst, entry.payload.memoryCapBytes), usage };
  } finally {
    if (inst) inst.slot.active = undefined;
    Atomics.store(ints, SIGNAL.runId, 0);
  }
  usage.cpuMs = Math.round((threadCpuMicros() - cpu0) / 100) / 10;
  usage.wallMs = Math.round((performance.now() - start) * 1000) / 1000;
  usage.memoryBytes = inst ? memoryBytes(inst.memories) : 0;
  if (reply.ok && usage.cpuMs > req.limits.cpu_ms) {
    reply = { type: 'result', runId: req.runId, ok: false, error: { code: SandboxCodes.cpu, message: `used ${usage.cpuMs} ms of CPU, limit ${req.limits.cpu_ms} ms` }, usage };
  }
  return inst ? { reply, used: inst } : { reply };
}

function checkOutput(req: RunRequest, out: unknown, usage: WorkerUsage): RunReply {
  if (typeof out !== 'string') {
    return { type: 'result', runId: req.runId, ok: false, error: { code: SandboxCodes.outputInvalid, message: 'action returned a non-string' }, usage };
  }
  const bytes = Buffer.byteLength(out, 'utf8');
  if (bytes > req.limits.max_output_bytes) {
    return { type: 'result', runId: req.runId, ok: false, error: { code: SandboxCodes.outputTooLarge, message: `output of ${bytes} bytes exceeds ${req.limits.max_output_bytes}` }, usage };
  }
  try {
    JSON.parse(out);
  } catch {
    return { type: 'result', runId: req.runId, ok: false, error: { code: SandboxCodes.outputInvalid, message: 'action output is not JSON' }, usage };
  }
  if (jsonNestsDeeperThan(out, MAX_OUTPUT_DEPTH)) {
    return { type: 'result', runId: req.runId, ok: false, error: { code: SandboxCodes.outputInvalid, message: `action output nests deeper than ${MAX_OUTPUT_DEPTH} levels` }, usage };
  }
  return { type: 'result', runId: req.runId, ok: true, output: out, usage };
}

function prewarm(entry: Entry): void {
  if (entry.warm || entries.get(entry.payload.key) !== entry) return;
  try {
    entry.warm = instantiate(entry);
  } catch {
    entry.warm = undefined; // the next run instantiates itself and reports the error
  }
}

function register(payload: ComponentPayload): void {
  const script = new vm.Script(payload.factorySource, { filename: `component-${payload.name}.js` });
  const factory = script.runInThisContext() as () => InstantiateFn;
  const memoriesOf = new Map(Object.entries(payload.definedMemories).flatMap(([name, n]) => (payload.modules[name] ? [[payload.modules[name]!, n] as const] : [])));
  const entry: Entry = { payload, factory, memoriesOf, memory: new MemoryLeases(memoryTypesOf(payload.modules, payload.memoryImports)), warm: undefined };
  entries.set(payload.key, entry);
  prewarm(entry);
}

parentPort!.on('message', (msg: MainToWorker) => {
  if (msg.type === 'register') {
    register(msg.component);
    Atomics.store(ints, SIGNAL.ready, 1);
    parentPort!.postMessage({ type: 'registered', key: msg.component.key });
  } else if (msg.type === 'unregister') {
    entries.delete(msg.key);
  } else if (msg.type === 'run') {
    // An action queued behind the previous one runs only if the pool has not taken it back.
    if (msg.claim !== undefined && Atomics.compareExchange(ints, msg.claim, msg.runId, 0) !== msg.runId) return;
    const { reply, used } = run(msg);
    parentPort!.postMessage(reply);
    // Zero the spent instance's memory and re-warm right away, before the next message is read:
    // the pool routes new work to workers whose ready flag is set, so both stay off the request
    // path when one is idle.
    const entry = entries.get(msg.key);
    if (used && entry) entry.memory.release(used.leases);
    if (entry) prewarm(entry);
    Atomics.store(ints, SIGNAL.ready, 1);
  }
});
