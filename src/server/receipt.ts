/**
 * Turning one sandbox run into the parameters of an execution receipt. Pure: every value comes
 * from the arguments (no clock, no I/O), so the same run always yields the same statement.
 */
import type { ExecutionParams, KvUse, RequestSignature } from '../receipts/index.ts';
import type { LoadedComponent, RunResult } from '../sandbox/index.ts';
import { canonicalJson, sha256, toHex } from '../util/index.ts';
import type { ExecutorAttestation } from './attest.ts';
import type { Caller } from './service.ts';

/**
 * The policy that allowed a call: who called, which actions the caller may run, and the
 * component's grant and limits. Its SHA-256 over canonical JSON is the receipt's policyDigest.
 */
export function policyDocument(component: LoadedComponent, caller: Caller): Record<string, unknown> {
  return {
    version: 1,
    action: component.name,
    caller: { id: caller.id, actions: [...caller.actions].sort() },
    grants: component.manifest.grants,
    limits: component.manifest.limits,
  };
}

// Components and callers are fixed for a boot: compute each pair's digest once.
const policyDigests = new WeakMap<LoadedComponent, WeakMap<Caller, string>>();

export function policyDigest(component: LoadedComponent, caller: Caller): string {
  let byCaller = policyDigests.get(component);
  if (!byCaller) policyDigests.set(component, (byCaller = new WeakMap()));
  let digest = byCaller.get(caller);
  if (digest === undefined) byCaller.set(caller, (digest = toHex(sha256(canonicalJson(policyDocument(component, caller))))));
  return digest;
}

/** Manifest limits under camelCase names (the receipt schema's convention). */
export function receiptLimits(component: LoadedComponent): Record<string, number> {
  const l = component.manifest.limits;
  return {
    timeoutMs: l.timeout_ms,
    memoryMb: l.memory_mb,
    cpuMs: l.cpu_ms,
    maxOutputBytes: l.max_output_bytes,
    maxHostCalls: l.max_host_calls,
    maxHttpResponseBytes: l.max_http_response_bytes,
  };
}

function kvUse(ops: readonly { op: string; bucket: string }[]): KvUse[] {
  const counts = new Map<string, KvUse>();
  for (const o of ops) {
    const id = `${o.bucket}\u0000${o.op}`;
    const prev = counts.get(id);
    counts.set(id, { bucket: o.bucket, op: o.op, count: (prev?.count ?? 0) + 1 });
  }
  return [...counts.values()].sort((a, b) => (a.bucket === b.bucket ? a.op.localeCompare(b.op) : a.bucket.localeCompare(b.bucket)));
}

/** Origins (scheme://host[:port]) to the host names the receipt records. */
function hostsOf(origins: readonly string[]): string[] {
  return origins.map((o) => o.replace(/^[a-z][a-z0-9+.-]*:\/\//i, ''));
}

export interface ReceiptInput {
  readonly invocationId: string;
  readonly caller: Caller;
  readonly requestSignature?: RequestSignature;
  readonly component: LoadedComponent;
  readonly input: Uint8Array;
  readonly output: Uint8Array;
  readonly run: RunResult;
  /** Error code when the run did not complete (overrides the run's). */
  readonly errorCode?: string;
  readonly executor: { readonly id: string; readonly version: string; readonly signingKey: Uint8Array };
  readonly attestation: ExecutorAttestation;
  readonly recordLogIndex: number;
  readonly startedAt: Date;
  readonly finishedAt: Date;
}

export function executionParams(r: ReceiptInput): ExecutionParams {
  const grants = r.component.manifest.grants;
  const usage = r.run.usage;
  const ok = r.run.ok && r.errorCode === undefined;
  return {
    invocationId: r.invocationId,
    caller: r.requestSignature === undefined ? { id: r.caller.id } : { id: r.caller.id, requestSignature: r.requestSignature },
    component: { name: r.component.name, digest: r.component.digest },
    input: r.input,
    output: r.output,
    outcome: ok ? 'ok' : 'error',
    ...(ok ? {} : { errorCode: r.errorCode ?? r.run.error?.code ?? 'sandbox.trap' }),
    capabilities: {
      granted: { hosts: hostsOf(grants.http), secrets: [...grants.secrets], kv: [...grants.kv] },
      used: {
        hosts: hostsOf(usage.hostsContacted),
        secrets: [...new Set([...usage.secretsUsed, ...usage.secretsRevealed])],
        kv: kvUse(usage.kvOps),
        hostCalls: usage.hostCalls,
      },
    },
    limits: receiptLimits(r.component),
    policyDigest: policyDigest(r.component, r.caller),
    executor: r.executor,
    attestation: {
      evidenceKind: r.attestation.kind,
      tee: r.attestation.tee,
      evidenceDigest: r.attestation.evidenceDigest,
      measurement: r.attestation.measurement,
      appraisalStatus: r.attestation.appraisal?.status ?? 'none',
      recordLogIndex: r.recordLogIndex,
    },
    startedAt: r.startedAt,
    finishedAt: r.finishedAt < r.startedAt ? r.startedAt : r.finishedAt,
  };
}

/** RFC 9562 UUIDv7: 48-bit Unix milliseconds, version 7, 74 random bits (sortable by time). */
export function uuidv7(nowMs: number, random: Uint8Array): string {
  const b = new Uint8Array(16);
  b.set(random.subarray(0, 16));
  let ms = Math.max(0, Math.floor(nowMs));
  for (let i = 5; i >= 0; i--) {
    b[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = toHex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
