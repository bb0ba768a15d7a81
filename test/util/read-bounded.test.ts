import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBoundedFile, readBoundedFileSync } from '../../src/util/index.ts';

let dir: string;
let fifo: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'attex-read-bounded-'));
  fifo = path.join(dir, 'fifo');
  expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
  writeFileSync(path.join(dir, 'small'), 'hello');
  writeFileSync(path.join(dir, 'big'), Buffer.alloc(3 * 1024 * 1024, 0x61));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const codeOf = async (p: Promise<unknown>) => p.then(() => 'read', (err: NodeJS.ErrnoException) => err.code);
const codeOfSync = (f: () => unknown) => {
  try {
    f();
    return 'read';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
};

describe('readBoundedFile', () => {
  it('reads a regular file within the cap, exactly', async () => {
    expect((await readBoundedFile(path.join(dir, 'small'), 5)).toString()).toBe('hello');
    expect(readBoundedFileSync(path.join(dir, 'small'), 5).toString()).toBe('hello');
    const big = await readBoundedFile(path.join(dir, 'big'), 3 * 1024 * 1024);
    expect(big.length).toBe(3 * 1024 * 1024);
    expect(big.every((b) => b === 0x61)).toBe(true);
  });

  it('refuses a FIFO without blocking, a device, a directory and a file over the cap', async () => {
    for (const [file, max, code] of [
      [fifo, 1024, 'ENOTREG'],
      ['/dev/zero', 1024, 'ENOTREG'],
      [dir, 1024, 'EISDIR'],
      [path.join(dir, 'small'), 4, 'EFBIG'],
      [path.join(dir, 'missing'), 4, 'ENOENT'],
    ] as const) {
      expect([file, await codeOf(readBoundedFile(file, max))]).toEqual([file, code]);
      expect([file, codeOfSync(() => readBoundedFileSync(file, max))]).toEqual([file, code]);
    }
  });
});
