/**
 * The attex command as a real process whose stdout reader has gone away (`attex … | head`): the
 * output is cut off and the command ends with its own exit code, without an EPIPE crash.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const MAIN = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../../src/cli/main.ts');

/** Runs attex with its stdout pipe closed by the reader before anything is written. */
function withClosedStdout(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.destroy();
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => void (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr }));
  });
}

describe('attex with a reader that stopped early', () => {
  it('ends with the command\'s own exit code and no crash', async () => {
    for (const [args, code] of [[['--help'], 0], [['verify', '--help'], 0], [['keygen', '--help'], 0], [['no-such-command'], 2]] as const) {
      const run = await withClosedStdout(args);
      expect(run.stderr).not.toMatch(/EPIPE|Unhandled|at /);
      expect(run.code).toBe(code);
    }
  });
});
