/** `attex build` and `attex action run` through the CLI entry point, in-process. */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.ts';
import { examplesDir, fixturesDir, repoRoot } from './helpers.ts';

interface Outcome { code: number; stdout: string; stderr: string }

async function cli(...argv: string[]): Promise<Outcome> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  stdout.on('data', (c: Buffer) => out.push(c.toString()));
  stderr.on('data', (c: Buffer) => err.push(c.toString()));
  const code = await runCli(argv, { stdout, stderr, stdin: Readable.from([]), env: {}, cwd: repoRoot });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'attex-cli-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('attex build', () => {
  it('builds, refuses an over-importing component with exit 1, and reuses its cache', async () => {
    const components = path.join(work, 'components');
    const cacheDir = path.join(work, 'cache');
    await cp(path.join(examplesDir, 'wat-echo'), path.join(components, 'wat-echo'), { recursive: true });
    await cp(path.join(fixturesDir, 'hostile-overreach'), path.join(components, 'hostile-overreach'), { recursive: true });

    const first = await cli('build', components, '--json', '--cache-dir', cacheDir);
    expect(first.code).toBe(1);
    const report = JSON.parse(first.stdout) as { built: Array<{ name: string; cached: boolean; digest: string }>; failed: Array<{ name: string; code: string; message: string }> };
    expect(report.built.map((b) => [b.name, b.cached])).toEqual([['wat-echo', false]]);
    expect(report.failed).toEqual([expect.objectContaining({ name: 'hostile-overreach', code: 'sandbox.imports-exceed-grant' })]);
    expect(report.failed[0]!.message).toContain('attex:action/http@0.1.0');
    expect(first.stderr).toContain('FAILED');

    await rm(path.join(components, 'hostile-overreach'), { recursive: true });
    const second = await cli('build', components, '--cache-dir', cacheDir);
    expect(second.code).toBe(0);
    expect(second.stderr).toMatch(/wat-echo: cached/);
    expect(second.stdout).toMatch(new RegExp(`^wat-echo\t${report.built[0]!.digest}\t\\S+\\.wasm\n$`));
  });

  it('a missing components directory is an I/O error (exit 2)', async () => {
    const r = await cli('build', path.join(work, 'nope'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('sandbox.build-failed');
  });
});

describe('attex action run', () => {
  const input = JSON.stringify({ items: [{ category: 'a', amount: 2 }, { category: 'b', amount: 5 }] });

  it('prints the output on stdout and usage on stderr', async () => {
    const r = await cli('action', 'run', 'components/transform', '--input', input);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ totals: { a: 2, b: 5 }, count: 2, largest: { category: 'b', amount: 5 } });
    expect(r.stderr).toMatch(/component transform sha256:[0-9a-f]{64}/);
    expect(r.stderr).toMatch(/duration [\d.]+ ms, cpu [\d.]+ ms, memory \d+ KiB, host calls 0/);
  });

  it('--json prints the whole result; a guest error is exit 1', async () => {
    const r = await cli('action', 'run', 'components/transform', '--input', '{"items":7}', '--json');
    expect(r.code).toBe(1);
    const result = JSON.parse(r.stdout);
    expect(result).toMatchObject({ ok: false, error: { code: 'action.failed' }, component: { name: 'transform' } });
    expect(result.usage).toMatchObject({ hostCalls: 0, secretsRevealed: [] });
  });

  it('reports a limit outcome with exit 1', async () => {
    const r = await cli('action', 'run', path.relative(repoRoot, path.join(fixturesDir, 'hostile-loop')), '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error.code).toBe('sandbox.timeout');
  });

  it('usage errors exit 2 and --help exits 0', async () => {
    expect((await cli('action')).code).toBe(2);
    expect((await cli('action', 'frobnicate')).code).toBe(2);
    const missing = await cli('action', 'run');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('missing <component-dir | component.wasm>');
    expect((await cli('action', 'run', 'components/transform', '--grant-override', '{nope')).stderr).toContain('--grant-override is not valid JSON');
    expect((await cli('action', 'run', 'x.wasm')).code).toBe(2);
    const help = await cli('action', 'run', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: attex action run');
  });

  it('a grant override that no longer covers the imports is refused (exit 2)', async () => {
    const r = await cli('action', 'run', 'components/fetch-quote', '--grant-override', '{"grants":{"http":[]}}');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('sandbox.imports-exceed-grant');
  });
});
