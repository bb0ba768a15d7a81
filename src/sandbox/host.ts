/**
 * The pool's host handler: answers a worker's capability calls for one run. It re-checks every
 * grant (the worker is not trusted to have done so), records what was used, and never returns
 * a secret value except through `reveal`, which is recorded by name.
 */
import { createHmac } from 'node:crypto';
import type { KvStore } from './kv.ts';
import { KvQuotaError, MAX_KV_KEY_BYTES, MAX_KV_VALUE_BYTES } from './kv.ts';
import { type GuestRequest, type Resolver, guestFetch } from './http.ts';
import type { Grants, Limits } from './manifest.ts';
import type { HostOp, HostReply } from './protocol.ts';

/** Where secrets come from (the broker client in production, an in-memory map in tests). */
export interface SecretSource {
  has(name: string): boolean;
  get(name: string): Uint8Array | undefined;
}

export interface HostUsage {
  hostsContacted: string[];
  secretsUsed: string[];
  secretsRevealed: string[];
  kvOps: Array<{ op: string; bucket: string; key?: string }>;
}

export interface HostRunContext {
  readonly grants: Grants;
  readonly limits: Limits;
  readonly deadline: number;
  readonly secrets: SecretSource | undefined;
  readonly kv: KvStore | undefined;
  readonly resolver: Resolver;
  readonly usage: HostUsage;
  /** Aborted once the run's result is delivered: nothing may start or go on for it after that. */
  readonly ended: AbortSignal;
  /** Host calls answered for this run: the worker counts them too, but it is not trusted to. */
  readonly calls: { count: number };
}

const MAX_KV_OPS_RECORDED = 256;
type Result = HostReply['result'];
const ok = (val?: unknown): Result => ({ tag: 'ok', val });
const fail = (tag: string, val?: string): Result => ({ tag: 'err', val: val === undefined ? { tag } : { tag, val } });

function addOnce(list: string[], value: string): void {
  if (!list.includes(value)) list.push(value);
}

function secretBytes(ctx: HostRunContext, name: string): Uint8Array | { denied: string } {
  if (typeof name !== 'string' || !ctx.grants.secrets.includes(name)) return { denied: `secret '${String(name).slice(0, 64)}' is not granted` };
  const value = ctx.secrets?.get(name);
  if (!value) return { denied: `secret '${name}' is not available` };
  return value;
}

async function kvCall(ctx: HostRunContext, op: HostOp, args: readonly unknown[]): Promise<Result> {
  const [bucket, key, value] = args as [string, string | null, Uint8Array | undefined];
  if (typeof bucket !== 'string' || !ctx.grants.kv.includes(bucket)) return fail('access-denied');
  if (!ctx.kv) return fail('no-such-store');
  // Only a listing goes without a key (its cursor); every other operation names one.
  if (key === null ? op !== 'kv.list' : typeof key !== 'string' || Buffer.byteLength(key) > MAX_KV_KEY_BYTES) return fail('other', 'key missing or too long');
  if (ctx.usage.kvOps.length < MAX_KV_OPS_RECORDED) ctx.usage.kvOps.push(key === null ? { op: op.slice(3), bucket } : { op: op.slice(3), bucket, key });
  try {
    switch (op) {
      case 'kv.get': return ok(await ctx.kv.get(bucket, key!));
      case 'kv.set':
        if (!(value instanceof Uint8Array) || value.length > MAX_KV_VALUE_BYTES) return fail('other', 'value too large');
        await ctx.kv.set(bucket, key!, value);
        return ok();
      case 'kv.delete': await ctx.kv.delete(bucket, key!); return ok();
      case 'kv.exists': return ok(await ctx.kv.exists(bucket, key!));
      case 'kv.list': {
        const r = await ctx.kv.listKeys(bucket, key ?? undefined);
        return ok({ keys: r.keys, cursor: r.cursor });
      }
      default: return fail('other', 'unknown operation');
    }
  } catch (e) {
    // A full bucket is the guest's to know; other store failures are the host's (no paths).
    return fail('other', e instanceof KvQuotaError ? e.message : 'the key-value store failed');
  }
}

export async function handleHostCall(ctx: HostRunContext, op: HostOp, args: readonly unknown[]): Promise<Result> {
  if (++ctx.calls.count > ctx.limits.max_host_calls) return fail('denied', `more than ${ctx.limits.max_host_calls} capability calls (max_host_calls)`);
  switch (op) {
    case 'http.fetch': {
      if (ctx.grants.http.length === 0) return fail('denied', 'no outbound hosts are granted');
      return guestFetch(args[0] as GuestRequest, {
        grants: ctx.grants.http,
        secretHeaderGrants: ctx.grants.secretHeaders,
        maxResponseBytes: ctx.limits.max_http_response_bytes,
        deadline: ctx.deadline,
        resolver: ctx.resolver,
        ended: ctx.ended,
        secretValue: (name) => {
          const v = secretBytes(ctx, name);
          if (v instanceof Uint8Array) addOnce(ctx.usage.secretsUsed, name);
          return v;
        },
        secretsInUse: () => ctx.usage.secretsUsed.filter((n) => !ctx.usage.secretsRevealed.includes(n)).map((n) => ctx.secrets?.get(n)).filter((v): v is Uint8Array => v instanceof Uint8Array),
        onContact: (origin) => addOnce(ctx.usage.hostsContacted, origin),
      });
    }
    case 'secret.open': {
      const name = args[0] as string;
      if (typeof name !== 'string' || !ctx.grants.secrets.includes(name)) return fail('denied', 'secret is not granted');
      return ctx.secrets?.has(name) ? ok() : fail('not-found', `secret '${name}' is not available`);
    }
    case 'secret.hmac': {
      const v = secretBytes(ctx, args[0] as string);
      if (!(v instanceof Uint8Array)) return fail('denied', v.denied);
      const data = args[1];
      if (!(data instanceof Uint8Array)) return fail('invalid-request', 'hmac-sha256 data must be bytes');
      if (data.length > 16 << 20) return fail('invalid-request', `hmac-sha256 data is ${data.length} bytes, over the 16 MiB limit`);
      addOnce(ctx.usage.secretsUsed, args[0] as string);
      return ok(new Uint8Array(createHmac('sha256', v).update(data).digest()));
    }
    case 'secret.reveal': {
      const v = secretBytes(ctx, args[0] as string);
      if (!(v instanceof Uint8Array)) return fail('denied', v.denied);
      addOnce(ctx.usage.secretsRevealed, args[0] as string);
      return ok(new Uint8Array(v));
    }
    default:
      return kvCall(ctx, op, args);
  }
}
