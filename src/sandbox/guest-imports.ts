/**
 * The capability imports a component sees, built inside the worker. Cheap checks (grant lists,
 * host-call budget) happen here; anything that touches secrets, the network or storage goes to
 * the pool's host handler over a synchronous channel, which checks the grant again.
 */
import { CAPABILITY_INTERFACES } from './imports-policy.ts';
import type { HostOp, LogEntry, RunRequest, WorkerUsage } from './protocol.ts';
import { SandboxCodes } from './errors.ts';

/** Thrown from an import to abort the guest; jco propagates plain Errors as exceptions. */
export class SandboxAbort extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'SandboxAbort';
    this.code = code;
  }
}

export interface ActiveRun {
  readonly request: RunRequest;
  readonly usage: WorkerUsage;
  readonly deadline: number;
  abort: SandboxAbort | undefined;
}

export type HostCaller = (run: ActiveRun, op: HostOp, args: unknown[]) => { tag: 'ok' | 'err'; val?: unknown };

const MAX_LOGS = 64;
const MAX_LOG_CHARS = 1024;
const MAX_DENIED = 64;

function clip(text: unknown, max: number): string {
  const s = typeof text === 'string' ? text : String(text);
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** Count one capability call; abort the guest once the manifest's budget is spent. */
export function chargeHostCall(run: ActiveRun): void {
  if (run.abort) throw run.abort;
  run.usage.hostCalls++;
  if (run.usage.hostCalls > run.request.limits.max_host_calls) {
    run.abort = new SandboxAbort(SandboxCodes.hostCallsExceeded, `more than ${run.request.limits.max_host_calls} host calls`);
    throw run.abort;
  }
}

function noteDenied(run: ActiveRun, what: string): void {
  if (run.usage.denied.length < MAX_DENIED && !run.usage.denied.includes(what)) run.usage.denied.push(what);
}

/** Capability imports keyed by versioned interface name. `current()` is the run bound to the instance. */
export function capabilityImports(current: () => ActiveRun, host: HostCaller): Record<string, Record<string, unknown>> {
  const call = (op: HostOp, args: unknown[]) => {
    const run = current();
    chargeHostCall(run);
    return host(run, op, args);
  };

  class Bucket {
    readonly #name: string;
    constructor(name: string) { this.#name = name; }
    get(key: string) { return call('kv.get', [this.#name, key]); }
    set(key: string, value: Uint8Array) { return call('kv.set', [this.#name, key, value]); }
    delete(key: string) { return call('kv.delete', [this.#name, key]); }
    exists(key: string) { return call('kv.exists', [this.#name, key]); }
    listKeys(cursor: string | undefined) { return call('kv.list', [this.#name, cursor ?? null]); }
  }

  /** The host's reason for refusing a request the guest made wrongly, else `otherwise`. */
  const refusal = (r: { val?: unknown }, otherwise: string): string => {
    const v = r.val as { tag?: unknown; val?: unknown } | undefined;
    return v?.tag === 'invalid-request' && typeof v.val === 'string' ? v.val : otherwise;
  };

  class Secret {
    readonly #name: string;
    constructor(name: string) { this.#name = name; }
    name(): string { return this.#name; }
    hmacSha256(data: Uint8Array): Uint8Array {
      const r = call('secret.hmac', [this.#name, data]);
      if (r.tag !== 'ok') throw new SandboxAbort(SandboxCodes.capabilityDenied, refusal(r, `secret ${this.#name} is no longer available`));
      return r.val as Uint8Array;
    }
    reveal(): Uint8Array {
      const r = call('secret.reveal', [this.#name]);
      if (r.tag !== 'ok') throw new SandboxAbort(SandboxCodes.capabilityDenied, `secret ${this.#name} is no longer available`);
      return r.val as Uint8Array;
    }
  }

  return {
    [CAPABILITY_INTERFACES.logging]: {
      log(level: string, context: string, message: string): void {
        const run = current();
        chargeHostCall(run);
        if (run.usage.logs.length < MAX_LOGS) {
          const entry: LogEntry = { level: clip(level, 16), context: clip(context, 128), message: clip(message, MAX_LOG_CHARS) };
          run.usage.logs.push(entry);
        }
      },
    },
    [CAPABILITY_INTERFACES.config]: {
      get(key: string): string | undefined {
        const run = current();
        chargeHostCall(run);
        if (!run.request.grants.config.includes(key)) {
          noteDenied(run, `config:${clip(key, 64)}`);
          return undefined;
        }
        if (!run.usage.configRead.includes(key)) run.usage.configRead.push(key);
        return run.request.config.find(([k]) => k === key)?.[1];
      },
      getAll(): Array<[string, string]> {
        const run = current();
        chargeHostCall(run);
        for (const [k] of run.request.config) if (!run.usage.configRead.includes(k)) run.usage.configRead.push(k);
        return run.request.config.map(([k, v]) => [k, v]);
      },
    },
    [CAPABILITY_INTERFACES.kv]: {
      Bucket,
      open(identifier: string) {
        const run = current();
        chargeHostCall(run);
        if (!run.request.grants.kv.includes(identifier)) {
          noteDenied(run, `kv:${clip(identifier, 64)}`);
          return { tag: 'err', val: { tag: 'access-denied' } };
        }
        return { tag: 'ok', val: new Bucket(identifier) };
      },
    },
    [CAPABILITY_INTERFACES.http]: {
      fetch(req: unknown) {
        const r = call('http.fetch', [req]);
        if (r.tag === 'err') {
          const v = r.val as { tag: string; val: string };
          if (v.tag === 'denied') noteDenied(current(), `http:${clip(v.val, 200)}`);
        }
        return r;
      },
    },
    [CAPABILITY_INTERFACES.secrets]: {
      Secret,
      open(name: string) {
        const run = current();
        if (!run.request.grants.secrets.includes(name)) {
          chargeHostCall(run);
          noteDenied(run, `secret:${clip(name, 64)}`);
          return { tag: 'err', val: { tag: 'denied', val: `secret '${clip(name, 64)}' is not granted` } };
        }
        const r = call('secret.open', [name]);
        return r.tag === 'ok' ? { tag: 'ok', val: new Secret(name) } : r;
      },
    },
  };
}
