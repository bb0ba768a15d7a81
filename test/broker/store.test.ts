import { mkdtemp, readdir, readFile, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadOperatorKey, openSecretStore, parseOperatorKey } from '../../src/broker/store/index.ts';

const KEY_HEX = '8f'.repeat(32);
const SECRET = 'store-test-secret-VALUE-7f3a9c';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'attex-broker-store-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('operator key', () => {
  it('accepts 64 hex digits and base64 of 32 bytes, refuses anything else without echoing it', () => {
    expect(parseOperatorKey(KEY_HEX)).toHaveLength(32);
    expect(parseOperatorKey(Buffer.alloc(32, 7).toString('base64'))).toEqual(new Uint8Array(32).fill(7));
    expect(parseOperatorKey(Buffer.alloc(32, 7).toString('base64url'))).toEqual(new Uint8Array(32).fill(7));
    for (const bad of ['abc', '8f'.repeat(31), Buffer.alloc(16).toString('base64'), `${KEY_HEX}00`]) {
      let message = '';
      try {
        parseOperatorKey(bad);
      } catch (err) {
        message = (err as Error).message;
        expect((err as { code: string }).code).toBe('broker.operator-key');
      }
      expect(message).not.toBe('');
      expect(message).not.toContain(bad);
    }
  });

  it('prefers the key file (hex text or 32 raw bytes) over the environment', async () => {
    const f = path.join(dir, 'key');
    await writeFile(f, Buffer.alloc(32, 3));
    expect(await loadOperatorKey({ keyFile: f, env: { ATTEX_BROKER_KEY: KEY_HEX } })).toEqual(new Uint8Array(32).fill(3));
    expect(await loadOperatorKey({ env: { ATTEX_BROKER_KEY: KEY_HEX } })).toEqual(new Uint8Array(32).fill(0x8f));
    await expect(loadOperatorKey({ env: {} })).rejects.toMatchObject({ code: 'broker.operator-key' });
  });
});

describe('secret store', () => {
  it('round-trips values, lists paths, removes, and never writes plaintext', async () => {
    const store = await openSecretStore(dir, parseOperatorKey(KEY_HEX));
    await store.put('default/key/db', new TextEncoder().encode(SECRET));
    await store.put('default/key/api', new TextEncoder().encode('second'));
    expect(new TextDecoder().decode(await store.get('default/key/db'))).toBe(SECRET);
    expect(await store.list()).toEqual(['default/key/api', 'default/key/db']);
    expect(await store.has('default/key/none')).toBe(false);
    expect(await store.get('default/key/none')).toBeUndefined();

    const files = await readdir(dir);
    expect(files.filter((f) => f.startsWith('.tmp-'))).toEqual([]);
    for (const f of files) {
      const bytes = await readFile(path.join(dir, f));
      expect(bytes.includes(Buffer.from(SECRET))).toBe(false);
      expect(bytes.toString('utf8')).not.toContain(Buffer.from(SECRET).toString('base64'));
    }
    expect(await store.remove('default/key/db')).toBe(true);
    expect(await store.remove('default/key/db')).toBe(false);
    expect(await store.list()).toEqual(['default/key/api']);
  });

  it('uses a fresh nonce per write (same value, different ciphertext)', async () => {
    const store = await openSecretStore(dir, parseOperatorKey(KEY_HEX));
    await store.put('r/t/a', new TextEncoder().encode(SECRET));
    const [file] = await readdir(dir);
    const first = JSON.parse(await readFile(path.join(dir, file!), 'utf8'));
    await store.put('r/t/a', new TextEncoder().encode(SECRET));
    const second = JSON.parse(await readFile(path.join(dir, file!), 'utf8'));
    expect(second.nonce).not.toBe(first.nonce);
    expect(second.ciphertext).not.toBe(first.ciphertext);
  });

  it('refuses a wrong key, a record moved to another path (AAD), and tampering', async () => {
    const store = await openSecretStore(dir, parseOperatorKey(KEY_HEX));
    await store.put('r/t/a', new TextEncoder().encode(SECRET));
    await store.put('r/t/b', new TextEncoder().encode('other'));
    const wrong = await openSecretStore(dir, parseOperatorKey('11'.repeat(32)));
    await expect(wrong.get('r/t/a')).rejects.toMatchObject({ code: 'broker.store-decrypt' });

    // Copy a's record over b's file but claim path b: the AAD (resource path) no longer matches.
    const files = await readdir(dir);
    const recs = await Promise.all(files.map(async (f) => ({ f, rec: JSON.parse(await readFile(path.join(dir, f), 'utf8')) })));
    const a = recs.find((r) => r.rec.path === 'r/t/a')!;
    const b = recs.find((r) => r.rec.path === 'r/t/b')!;
    await writeFile(path.join(dir, b.f), JSON.stringify({ ...a.rec, path: 'r/t/b' }));
    await expect(store.get('r/t/b')).rejects.toMatchObject({ code: 'broker.store-decrypt' });

    const flipped = Buffer.from(a.rec.ciphertext, 'base64');
    flipped[0]! ^= 1;
    await writeFile(path.join(dir, a.f), JSON.stringify({ ...a.rec, ciphertext: flipped.toString('base64') }));
    await expect(store.get('r/t/a')).rejects.toMatchObject({ code: 'broker.store-decrypt' });

    await writeFile(path.join(dir, a.f), 'not json');
    await expect(store.get('r/t/a')).rejects.toMatchObject({ code: 'broker.store-corrupt' });
  });

  it('refuses paths that are not repo/type/tag', async () => {
    const store = await openSecretStore(dir, parseOperatorKey(KEY_HEX));
    for (const bad of ['a/b', 'a/b/c/d', '../b/c', 'a/./c', 'a/b/', 'a/b/c d', '.hidden/b/c']) {
      await expect(store.put(bad, new Uint8Array(1))).rejects.toMatchObject({ code: 'broker.resource-path' });
    }
  });
});
