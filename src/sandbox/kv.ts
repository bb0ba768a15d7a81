/**
 * Key-value stores behind `wasi:keyvalue/store`. The pool only ever passes bucket names the
 * manifest grants. The file store keeps one JSON file per bucket and replaces it atomically
 * (write temp file, fsync, rename) so a crash never leaves a half-written bucket.
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';

export interface KvStore {
  get(bucket: string, key: string): Promise<Uint8Array | undefined>;
  set(bucket: string, key: string, value: Uint8Array): Promise<void>;
  delete(bucket: string, key: string): Promise<void>;
  exists(bucket: string, key: string): Promise<boolean>;
  listKeys(bucket: string, cursor?: string): Promise<{ keys: string[]; cursor?: string }>;
}

export const MAX_KV_KEY_BYTES = 512;
export const MAX_KV_VALUE_BYTES = 1 << 20;
const PAGE = 100;

function page(all: string[], cursor: string | undefined): { keys: string[]; cursor?: string } {
  const sorted = [...all].sort();
  const start = cursor === undefined ? 0 : sorted.findIndex((k) => k > cursor);
  if (start < 0) return { keys: [] };
  const keys = sorted.slice(start, start + PAGE);
  return start + PAGE < sorted.length ? { keys, cursor: keys[keys.length - 1]! } : { keys };
}

export class MemoryKvStore implements KvStore {
  readonly #buckets = new Map<string, Map<string, Uint8Array>>();
  #bucket(name: string): Map<string, Uint8Array> {
    let b = this.#buckets.get(name);
    if (!b) this.#buckets.set(name, (b = new Map()));
    return b;
  }
  async get(bucket: string, key: string) { const v = this.#bucket(bucket).get(key); return v ? new Uint8Array(v) : undefined; }
  async set(bucket: string, key: string, value: Uint8Array) { this.#bucket(bucket).set(key, new Uint8Array(value)); }
  async delete(bucket: string, key: string) { this.#bucket(bucket).delete(key); }
  async exists(bucket: string, key: string) { return this.#bucket(bucket).has(key); }
  async listKeys(bucket: string, cursor?: string) { return page([...this.#bucket(bucket).keys()], cursor); }
}

export class FileKvStore implements KvStore {
  readonly #dir: string;
  #queue: Promise<unknown> = Promise.resolve();
  constructor(dir: string) { this.#dir = dir; }

  #file(bucket: string): string {
    if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(bucket)) throw new Error('invalid bucket name');
    return path.join(this.#dir, `${bucket}.json`);
  }
  async #read(bucket: string): Promise<Record<string, string>> {
    try {
      return Object.assign(Object.create(null) as Record<string, string>, JSON.parse(await readFile(this.#file(bucket), 'utf8')) as Record<string, string>);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return Object.create(null) as Record<string, string>;
      throw e;
    }
  }
  async #write(bucket: string, data: Record<string, string>): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    const file = this.#file(bucket);
    const tmp = `${file}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(JSON.stringify(data));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
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
