/**
 * A component binary whose core export name carries JavaScript: jco copies core names into the
 * instantiation code it generates, so such a name must be refused before that code exists.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, print } from '@bytecodealliance/jco';
import { describe, expect, it } from 'vitest';
import { SandboxPool, loadComponent } from '../../src/sandbox/index.ts';
import { build, examplesDir } from './helpers.ts';

const RUN_EXPORT = '"attex:action/action@0.1.0#run"';

async function echoWithCoreName(name: string): Promise<{ bytes: Uint8Array; manifest: Awaited<ReturnType<typeof build>>['manifest'] }> {
  const built = await build(path.join(examplesDir, 'wat-echo'));
  const wat = await print(await readFile(built.wasmPath));
  expect(wat).toContain(RUN_EXPORT);
  return { bytes: await parse(wat.split(RUN_EXPORT).join(JSON.stringify(name))), manifest: built.manifest };
}

describe('core import and export names', () => {
  it('a name that would break out of the generated code is refused at load', async () => {
    const injected = "r'] ?? Object.values(exports0).find((f) => typeof f === 'function'); globalThis.process.exit(3); //";
    const { bytes, manifest } = await echoWithCoreName(injected);
    await expect(loadComponent(bytes, manifest, { cacheDir: false })).rejects.toMatchObject({ code: 'sandbox.invalid-component', message: expect.stringMatching(/import or export name/) });
  });

  it('names as toolchains write them load and run', async () => {
    const { bytes, manifest } = await echoWithCoreName('attex:action/action@0.1.0#run (mem0 => mem1) | $x [y]');
    const component = await loadComponent(bytes, manifest, { cacheDir: false });
    const pool = await SandboxPool.create({ size: 1, components: [component] });
    try {
      const r = await pool.run('wat-echo', '{"a":1}');
      expect(r.ok).toBe(true);
      expect(r.output).toBe('{"a":1}');
    } finally {
      await pool.close();
    }
  });
});
