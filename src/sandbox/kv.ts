/**
 * Key-value stores behind `wasi:keyvalue/store`. The pool only ever passes bucket names the
 * manifest grants. The file store keeps one JSON file per bucket and replaces it atomically
 * (write temp file, fsync, rename, fsync the directory) so a crash never leaves a half-written
 * bucket. Every bucket has a quota (keys and bytes), so no component can grow one without bound.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { readBoundedFile } from '../util/index.ts';
import { writeFileAtomic } from '../util/files.ts';

export interface KvStore {
  get(bucket: string, key: string): Promise<Uint8Array | undefined>;
  set(bucket: string, key: string, value: Uint8Array): Promise<void>;
  delete(bucket: string, key: string): Promise<void>;
  exists(bucket: string, key: string): Promise<boolean>;
  listKeys(bucket: string, cursor?: string): Promise<{ keys: string[]; cursor?: string }>;
}

export const MAX_KV_KEY_BYTES = 512;
export const MAX_KV_VALUE_BYTES = 1 << 20;
/** Per bucket: keys, and bytes of keys plus values. */
export const MAX_KV_BUCKET_KEYS = 100_000;
export const MAX_KV_BUCKET_BYTES = 64 << 20;
export interface KvQuota {
  readonly maxKeys: number;
  readonly maxBytes: number;
}
const DEFAULT_QUOTA: KvQuota = { maxKeys: MAX_KV_BUCKET_KEYS, maxBytes: MAX_KV_BUCKET_BYTES };
const PAGE = 100;

/** Thrown by `set` when the bucket would go over its quota; the host answers the guest with it. */
export class KvQuotaError extends Error {
  constructor(bucket: string, what: string) {
    super(`bucket ${bucket} is full (${what}); delete keys first`);
    this.name = 'KvQuotaError';
  }
}

/** Refuses a set that would take `bucket` past its quota. */
function checkQuota(quota: KvQuota, bucket: string, keys: number, bytes: number): void {
  if (keys > quota.maxKeys) throw new KvQuotaError(bucket, `at most ${quota.maxKeys} keys`);
  if (bytes > quota.maxBytes) throw new KvQuotaError(bucket, `at most ${quota.maxBytes} bytes of keys and values`);
}

function page(all: string[], cursor: string | undefined): { keys: string[]; cursor?: string } {
  const sorted = [...all].sort();
  const start = cursor === undefined ? 0 : sorted.findIndex((k) => k > cursor);
  if (start < 0) return { keys: [] };
  const keys = sorted.slice(start, start + PAGE);
  return start + PAGE < sorted.length ? { keys, cursor: keys[keys.length - 1]! } : { keys };
}

export class MemoryKvStore implements KvStore {
  readonly #buckets = new Map<string, Map<string, Uint8Array>>();
  readonly #bytes = new Map<string, number>();
  readonly #quota: KvQuota;
  constructor(quota: KvQuota = DEFAULT_QUOTA) { this.#quota = quota; }
  #bucket(name: string): Map<string, Uint8Array> {
    let b = this.#buckets.get(name);
    if (!b) this.#buckets.set(name, (b = new Map()));
    return b;
  }
  async get(bucket: string, key: string) { const v = this.#bucket(bucket).get(key); return v ? new Uint8Array(v) : undefined; }
  async set(bucket: string, key: string, value: Uint8Array) {
    const b = this.#bucket(bucket);
    const old = b.get(key);
    const bytes = (this.#bytes.get(bucket) ?? 0) + value.length - (old ? old.length : -Buffer.byteLength(key));
    checkQuota(this.#quota, bucket, b.size + (old ? 0 : 1), bytes);
    b.set(key, new Uint8Array(value));
    this.#bytes.set(bucket, bytes);
  }
  async delete(bucket: string, key: string) {
    const b = this.#bucket(bucket);
    const old = b.get(key);
    if (!old) return;
    b.delete(key);
    this.#bytes.set(bucket, (this.#bytes.get(bucket) ?? 0) - old.length - Buffer.byteLength(key));
  }
  async exists(bucket: string, key: string) { return this.#bucket(bucket).has(key); }
  async listKeys(bucket: string, cursor?: string) { return page([...this.#bucket(bucket).keys()], cursor); }
}

export class FileKvStore implements KvStore {
  readonly #dir: string;
  readonly #quota: KvQuota;
  /** The bucket file holds base64 values and JSON punctuation: room for a full bucket, no more. */
  readonly #maxFileBytes: number;
  #queue: Promise<unknown> = Promise.resolve();
  constructor(dir: string, quota: KvQuota = DEFAULT_QUOTA) {
    this.#dir = dir;
    this.#quota = quota;
    this.#maxFileBytes = Math.ceil(quota.maxBytes * 1.4) + quota.maxKeys * 8 + 2;
  }

  #file(bucket: string): string {
    if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(bucket)) throw new Error('invalid bucket name');
    return path.join(this.#dir, `${bucket}.json`);
  }
  async #read(bucket: string): Promise<Record<string, string>> {
    try {
      const text = (await readBoundedFile(this.#file(bucket), this.#maxFileBytes)).toString('utf8');
      return Object.assign(Object.create(null) as Record<string, string>, JSON.parse(text) as Record<string, string>);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return Object.create(null) as Record<string, string>;
      throw e;
    }
  }
  async #write(bucket: string, data: Record<string, string>): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    await writeFileAtomic(this.#file(bucket), JSON.stringify(data));
  }
  /** Serialise read-modify-write cycles. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => undefined);
    return next;
  }
  async get(bucket: string, key: string) {
    const v = (await this.#read(bucket))[key];
    return v === undefined ? undefined : new Uint8Array(Buffer.from(v, 'base64'));
  }
  set(bucket: string, key: string, value: Uint8Array) {
    return this.#exclusive(async () => {
      const data = await this.#read(bucket);
      const keys = Object.keys(data);
      let bytes = 0;
      for (const k of keys) if (k !== key) bytes += Buffer.byteLength(k) + Buffer.byteLength(data[k]!, 'base64');
      checkQuota(this.#quota, bucket, keys.length + (key in data ? 0 : 1), bytes + Buffer.byteLength(key) + value.length);
      data[key] = Buffer.from(value).toString('base64');
      await this.#write(bucket, data);
    });
  }
  delete(bucket: string, key: string) {
    return this.#exclusive(async () => {
      const data = await this.#read(bucket);
      if (!(key in data)) return;
      delete data[key];
      await this.#write(bucket, data);
    });
  }
  async exists(bucket: string, key: string) { return key in (await this.#read(bucket)); }
  async listKeys(bucket: string, cursor?: string) { return page(Object.keys(await this.#read(bucket)), cursor); }
}
