/**
 * Sandbox worker thread. Holds compiled components, keeps one pre-instantiated (warm) instance
 * per component, and runs each action in a fresh instance that is discarded afterwards. Guest
 * code only ever runs inside `vm.runInContext(..., { timeout })`, including instantiation (a core
 * module may have a start function). Host calls that need the main thread block on a
 * SharedArrayBuffer signal with the remaining budget as the wait timeout, so an action's whole
 * wall-clock time stays bounded here; the pool's watchdog covers anything that escapes.
 */
import { parentPort, workerData, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import vm from 'node:vm';
import { GuestExit, engineStubs, type StdioSink } from './engine-stubs.ts';
import { type ActiveRun, SandboxAbort, capabilityImports } from './guest-imports.ts';
import { ACTION_EXPORT } from './imports-policy.ts';
import { SandboxCodes } from './errors.ts';
import type { ComponentPayload, HostOp, HostReply, MainToWorker, RunError, RunReply, RunRequest, WorkerUsage } from './protocol.ts';

interface WarmInstance {
  readonly run: (input: string) => unknown;
  readonly memories: WebAssembly.Memory[];
  readonly slot: { active: ActiveRun | undefined };
}

interface Entry {
  readonly payload: ComponentPayload;
  readonly factory: () => InstantiateFn;
  warm: WarmInstance | undefined;
}

type InstantiateFn = (
  getCoreModule: (name: string) => WebAssembly.Module,
  imports: Record<string, unknown>,
  instantiateCore: (m: WebAssembly.Module, i: WebAssembly.Imports) => WebAssembly.Instance,
) => Record<string, unknown>;

const { hostPort, signal } = workerData as { hostPort: MessagePort; signal: SharedArrayBuffer };
const flag = new Int32Array(signal);
const entries = new Map<string, Entry>();
const timerContext = vm.createContext({ __call: undefined as (() => unknown) | undefined });
let seq = 0;

/** Run `fn` so that V8 terminates it after `ms` (it throws ERR_SCRIPT_EXECUTION_TIMEOUT). */
function withTimeout<T>(fn: () => T, ms: number): T {
  if (ms <= 0) throw new SandboxAbort(SandboxCodes.timeout, 'time budget exhausted');
  timerContext.__call = fn;
  try {
    return vm.runInContext('__call()', timerContext, { timeout: Math.max(1, Math.ceil(ms)) }) as T;
  } finally {
    timerContext.__call = undefined;
  }
}

/** Synchronous request to the pool's host handler; waits at most until the run's deadline. */
function hostCall(run: ActiveRun, op: HostOp, args: unknown[]): HostReply['result'] {
  const mySeq = ++seq;
  Atomics.store(flag, 0, 0);
  hostPort.postMessage({ seq: mySeq, runId: run.request.runId, op, args });
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
    Atomics.wait(flag, 0, 0, remaining);
    Atomics.store(flag, 0, 0);
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
  const instantiateCore = (m: WebAssembly.Module, i: WebAssembly.Imports) => {
    const inst = new WebAssembly.Instance(m, i);
    for (const v of Object.values(inst.exports)) if (v instanceof WebAssembly.Memory) memories.push(v);
    return inst;
  };
  const modules = entry.payload.modules;
  const exports = withTimeout(
    () => entry.factory()((name) => {
      const mod = modules[name];
      if (!mod) throw new Error(`missing core module ${name}`);
      return mod;
    }, imports, instantiateCore),
    entry.payload.limits.timeout_ms,
  );
  const iface = (exports[ACTION_EXPORT] ?? exports.action) as { run?: (input: string) => unknown } | undefined;
  if (!iface || typeof iface.run !== 'function') throw new Error(`component does not export ${ACTION_EXPORT}`);
  return { run: iface.run.bind(iface), memories, slot };
}

function memoryBytes(memories: WebAssembly.Memory[]): number {
  return memories.reduce((max, m) => Math.max(max, m.buffer.byteLength), 0);
}

function classify(err: unknown, active: ActiveRun | undefined, inst: WarmInstance | undefined, capBytes: number): RunError {
  if (active?.abort) return { code: active.abort.code, message: active.abort.message };
  if (err instanceof SandboxAbort) return { code: err.code, message: err.message };
  const e = err as { code?: unknown; message?: unknown; payload?: unknown; name?: unknown };
  if (e && e.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') return { code: SandboxCodes.timeout, message: 'time limit exceeded' };
  if (err instanceof GuestExit) return { code: SandboxCodes.trap, message: err.message };
  const message = String(e?.message ?? err).slice(0, 500);
  if (e && typeof e === 'object' && 'payload' in e) {
    const p = e.payload as { code?: unknown; message?: unknown } | undefined;
    if (p && typeof p === 'object') {
      return { code: SandboxCodes.actionFailed, message: `${String(p.code).slice(0, 64)}: ${String(p.message).slice(0, 1000)}` };
    }
  }
  const used = inst ? memoryBytes(inst.memories) : 0;
  if (/out of memory|allocation|could not allocate|memory access out of bounds.*grow/i.test(message) || (capBytes > 0 && used >= capBytes * 0.5)) {
    return { code: SandboxCodes.memory, message: `memory limit reached (${Math.round(used / 1048576)} MiB of ${Math.round(capBytes / 1048576)} MiB): ${message}` };
  }
  return { code: SandboxCodes.trap, message };
}

function emptyUsage(): WorkerUsage {
  return { hostCalls: 0, logs: [], configRead: [], denied: [], stdioBytes: 0, cpuMs: 0, memoryBytes: 0 };
}

function run(req: RunRequest): RunReply {
  const entry = entries.get(req.key);
  const usage = emptyUsage();
  if (!entry) return { type: 'result', runId: req.runId, ok: false, error: { code: SandboxCodes.unknownAction, message: 'component not registered in worker' }, usage };
  const start = performance.now();
  const cpu0 = process.threadCpuUsage();
  const active: ActiveRun = { request: req, usage, deadline: start + req.limits.timeout_ms, abort: undefined };
  let inst = entry.warm;
  entry.warm = undefined;
  let reply: RunReply;
  try {
    inst ??= instantiate(entry);
    inst.slot.active = active;
    const runFn = inst.run;
    const out = withTimeout(() => runFn(req.input), active.deadline - performance.now());
    if (active.abort) throw active.abort;
    reply = checkOutput(req, out, usage);
  } catch (err) {
    reply = { type: 'result', runId: req.runId, ok: false, error: classify(err, active, inst, entry.payload.memoryCapBytes), usage };
  } finally {
    if (inst) inst.slot.active = undefined;
  }
  const cpu = process.threadCpuUsage(cpu0);
  usage.cpuMs = Math.round((cpu.user + cpu.system) / 100) / 10;
  usage.memoryBytes = inst ? memoryBytes(inst.memories) : 0;
  if (reply.ok && usage.cpuMs > req.limits.cpu_ms) {
    reply = { type: 'result', runId: req.runId, ok: false, error: { code: SandboxCodes.cpu, message: `used ${usage.cpuMs} ms of CPU, limit ${req.limits.cpu_ms} ms` }, usage };
  }
  return reply;
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
  return { type: 'result', runId: req.runId, ok: true, output: out, usage };
}

function prewarm(entry: Entry): void {
  if (entry.warm || !entries.has(entry.payload.key)) return;
  try {
    entry.warm = instantiate(entry);
  } catch {
    entry.warm = undefined; // the next run instantiates itself and reports the error
  }
}

function register(payload: ComponentPayload): void {
  const script = new vm.Script(payload.factorySource, { filename: `component-${payload.name}.js` });
  const factory = script.runInThisContext() as () => InstantiateFn;
  const entry: Entry = { payload, factory, warm: undefined };
  entries.set(payload.key, entry);
  prewarm(entry);
}

parentPort!.on('message', (msg: MainToWorker) => {
  if (msg.type === 'register') {
    register(msg.component);
    parentPort!.postMessage({ type: 'registered', key: msg.component.key });
  } else if (msg.type === 'unregister') {
    entries.delete(msg.key);
  } else if (msg.type === 'run') {
    const reply = run(msg);
    parentPort!.postMessage(reply);
    const entry = entries.get(msg.key);
    if (entry) setImmediate(() => prewarm(entry));
  }
});
