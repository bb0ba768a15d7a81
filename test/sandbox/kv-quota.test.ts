import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileKvStore, KvQuotaError, MemoryKvStore, type KvStore } from '../../src/sandbox/index.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'attex-kv-quota-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// Small quotas keep the test quick; the defaults (100,000 keys, 64 MiB) take the same paths.
const quota = { maxKeys: 20, maxBytes: 100 * 1024 };
const KiB10 = new Uint8Array(10 * 1024);

describe.each([
  ['MemoryKvStore', () => new MemoryKvStore(quota)],
  ['FileKvStore', () => new FileKvStore(path.join(dir, String(Math.random())), quota)],
] as Array<[string, () => KvStore]>)('%s quota', (_name, make) => {
  it('refuses a set that takes a bucket past its bytes; overwrites and deletes give room back', async () => {
    const kv = make();
    for (let i = 0; i < 9; i++) await kv.set('b', `k${i}`, KiB10); // 9 x (10 KiB + 2) bytes
    await expect(kv.set('b', 'one-more', KiB10)).rejects.toBeInstanceOf(KvQuotaError);
    await expect(kv.set('other', 'one-more', KiB10)).resolves.toBeUndefined(); // per bucket
    await kv.set('b', 'k0', new Uint8Array(1)); // an overwrite counts the new size only
    await expect(kv.set('b', 'one-more', KiB10)).resolves.toBeUndefined();
    await expect(kv.set('b', 'two-more', KiB10)).rejects.toThrow(/bucket b is full \(at most 102400 bytes/);
    await kv.delete('b', 'k1');
    await expect(kv.set('b', 'two-more', KiB10)).resolves.toBeUndefined();
  });

  it('refuses a new key past the key count, and still takes overwrites', async () => {
    const kv = make();
    for (let i = 0; i < quota.maxKeys; i++) await kv.set('many', `k${i}`, Uint8Array.of(i));
    await expect(kv.set('many', 'last', Uint8Array.of(1))).rejects.toThrow(/at most 20 keys/);
    await expect(kv.set('many', 'k7', Uint8Array.of(70))).resolves.toBeUndefined();
    expect(await kv.get('many', 'k7')).toEqual(Uint8Array.of(70));
  });
});

describe('FileKvStore on disk', () => {
  it('writes a bucket as JSON, and a bucket file that is a FIFO is an error, not a hang', async () => {
    const d = path.join(dir, 'on-disk');
    const kv = new FileKvStore(d, quota);
    await kv.set('b', 'k', Uint8Array.of(1));
    expect(JSON.parse(await readFile(path.join(d, 'b.json'), 'utf8'))).toEqual({ k: 'AQ==' });
    await mkdir(d, { recursive: true });
    expect(spawnSync('mkfifo', [path.join(d, 'fifo.json')]).status).toBe(0);
    await expect(kv.get('fifo', 'k')).rejects.toMatchObject({ code: 'ENOTREG' });
  });
});
