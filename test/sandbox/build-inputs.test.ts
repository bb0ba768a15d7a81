import { cp, mkdtemp, rm, symlink, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { build, examplesDir } from './helpers.ts';

describe('component folder', () => {
  it('a symbolic link in it is refused (its target would escape the build key and the folder)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'attex-build-link-'));
    try {
      await cp(path.join(examplesDir, 'wat-echo'), dir, { recursive: true });
      await expect(build(dir)).resolves.toMatchObject({ name: 'wat-echo' });
      await unlink(path.join(dir, 'component.wat'));
      await symlink(path.join(examplesDir, 'wat-echo', 'component.wat'), path.join(dir, 'component.wat'));
      await expect(build(dir)).rejects.toMatchObject({ code: 'sandbox.build-failed', message: expect.stringMatching(/component\.wat is a symbolic link/) });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
