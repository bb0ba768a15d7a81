/**
 * On-disk response cache, one JSON file per URL (named by the URL's SHA-256), written
 * atomically. A damaged or foreign entry is a miss, never an error: the cache only saves
 * requests, and everything it returns is verified by the verifiers anyway.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { readBoundedFile, sha256, toHex } from '../../util/index.ts';
import { writeFileAtomic } from './atomic.ts';

export interface CachedResponse {
  readonly url: string;
  readonly fetchedAt: Date;
  readonly body: Uint8Array;
  /** Only the headers worth keeping (issuer chains), lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
}

const MAX_ENTRY_BYTES = 4 * 1024 * 1024;

export class ResponseCache {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  fileFor(url: string): string {
    return path.join(this.dir, `${toHex(sha256(new TextEncoder().encode(url)))}.json`);
  }

  /** The entry for `url` if present, intact and younger than `maxAgeMs` at `nowMs`. */
  async get(url: string, maxAgeMs: number, nowMs: number): Promise<CachedResponse | undefined> {
    let text: string;
    try {
      // Only a regular file within the cap: anything else (a FIFO would block) is a miss.
      text = (await readBoundedFile(this.fileFor(url), MAX_ENTRY_BYTES)).toString('utf8');
    } catch {
      return undefined;
    }
    try {
      const entry = JSON.parse(text) as { v?: unknown; url?: unknown; fetchedAt?: unknown; body?: unknown; headers?: unknown };
      if (entry.v !== 1 || entry.url !== url || typeof entry.fetchedAt !== 'string' || typeof entry.body !== 'string') return undefined;
      const fetchedAt = new Date(entry.fetchedAt);
      const age = nowMs - fetchedAt.getTime();
      if (Number.isNaN(age) || age < 0 || age > maxAgeMs) return undefined;
      const headers: Record<string, string> = {};
      if (typeof entry.headers === 'object' && entry.headers !== null) {
        for (const [k, v] of Object.entries(entry.headers)) if (typeof v === 'string') headers[k] = v;
      }
      return { url, fetchedAt, body: new Uint8Array(Buffer.from(entry.body, 'base64')), headers };
    } catch {
      return undefined;
    }
  }

  async put(entry: CachedResponse): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const json = JSON.stringify({
      v: 1,
      url: entry.url,
      fetchedAt: entry.fetchedAt.toISOString(),
      headers: entry.headers,
      body: Buffer.from(entry.body).toString('base64'),
    });
    await writeFileAtomic(this.fileFor(entry.url), json);
  }
}
