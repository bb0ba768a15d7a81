/**
 * Thread scheduling policies, on real processes: every thread of a process is moved to
 * SCHED_BATCH and back, threads started afterwards inherit the policy, a missing `chrt` or a
 * refusal is reported instead of thrown, and the executor applies its `scheduling` setting to
 * its own threads (the sandbox workers included) before serving.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SchedulingPolicy, policyFromStat, setSchedulingPolicy, threadPolicies } from '../../src/util/index.ts';
import { newCaller, startTestExecutor } from '../server/helpers.ts';

const linux = process.platform === 'linux';

describe('policyFromStat', () => {
  it('reads field 41, counting from the last parenthesis of the command name', async () => {
    const fields = (policy: number) => ['S', ...Array.from({ length: 37 }, (_, i) => String(i + 4)), String(policy), '0', '0'].join(' ');
    expect(policyFromStat(`123 (node) ${fields(3)}`)).toBe('SCHED_BATCH');
    expect(policyFromStat(`123 (a) (b c) ${fields(0)}`)).toBe('SCHED_OTHER');
    expect(policyFromStat(`123 ()) ${fields(5)}`)).toBe('SCHED_IDLE');
    expect(policyFromStat(`123 (node) ${fields(4)}`)).toBeUndefined(); // no policy 4
    expect(policyFromStat(`123 (node) S 1 2 3`)).toBeUndefined();
    expect(policyFromStat('no parenthesis 1 2 3')).toBeUndefined();
    if (linux) expect(policyFromStat(await readFile('/proc/self/stat', 'utf8'))).toMatch(/^SCHED_/);
  });
});

/** A Node process with a worker thread; a line on its stdin makes it start another worker. */
async function threadedChild(): Promise<ChildProcess> {
  const script = `const { Worker } = require('node:worker_threads');
const park = () => new Worker('setInterval(() => {}, 1000)', { eval: true }).once('online', () => console.log('worker'));
park();
process.stdin.on('data', park);
setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  await nextWorker(child);
  return child;
}

function nextWorker(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => d.toString().includes('worker') && (child.stdout!.off('data', onData), resolve());
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
  });
}

function only(policies: Map<SchedulingPolicy, number>): SchedulingPolicy | undefined {
  return policies.size === 1 ? [...policies.keys()][0] : undefined;
}

const total = (policies: Map<SchedulingPolicy, number>) => [...policies.values()].reduce((a, b) => a + b, 0);

describe.runIf(linux)('setSchedulingPolicy', () => {
  let child: ChildProcess;
  beforeAll(async () => {
    child = await threadedChild();
  });
  afterAll(() => {
    child.kill('SIGKILL');
  });

  it('moves every thread to SCHED_BATCH, threads started later inherit it, and back', async () => {
    const pid = child.pid!;
    expect(await setSchedulingPolicy('batch', pid)).toEqual({ applied: true, policy: 'SCHED_BATCH' });
    const before = await threadPolicies(pid);
    expect(only(before)).toBe('SCHED_BATCH');
    expect(total(before)).toBeGreaterThan(4); // main, worker, V8's and libuv's threads
    child.stdin!.write('\n');
    await nextWorker(child);
    const after = await threadPolicies(pid);
    expect(only(after)).toBe('SCHED_BATCH');
    expect(total(after)).toBeGreaterThan(total(before));
    expect(await setSchedulingPolicy('other', pid)).toEqual({ applied: true, policy: 'SCHED_OTHER' });
    expect(only(await threadPolicies(pid))).toBe('SCHED_OTHER');
  });

  it('reports a missing chrt, a refusal and a bad pid instead of throwing', async () => {
    const missing = await setSchedulingPolicy('batch', child.pid!, { chrt: path.join(tmpdir(), 'attex-no-such-chrt') });
    expect(missing).toMatchObject({ applied: false, reason: expect.stringMatching(/not found \(it comes with util-linux\)/) });
    expect(only(await threadPolicies(child.pid!))).toBe('SCHED_OTHER');
    // A pid that no process has (above the kernel's pid_max).
    expect(await setSchedulingPolicy('batch', 2 ** 22 + 1)).toMatchObject({ applied: false, reason: expect.stringMatching(/^chrt failed: /) });
    for (const pid of [0, -1, 1.5, Number.NaN]) expect(await setSchedulingPolicy('batch', pid)).toMatchObject({ applied: false, reason: expect.stringMatching(/^not a process id/) });
  });
});

describe.runIf(linux)('the executor\'s scheduling setting', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'attex-sched-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  // In this order: the batch default changes this test process for good.
  it('"inherit" leaves the threads as they were', async () => {
    const before = new Set((await threadPolicies()).keys());
    const running = await startTestExecutor({ dir: path.join(dir, 'inherit'), actions: ['transform'], callers: [newCaller('alice')], extra: { scheduling: 'inherit' } });
    try {
      expect(running.config.scheduling).toBe('inherit');
      for (const policy of (await threadPolicies()).keys()) expect(before.has(policy)).toBe(true);
      if (before.size === 1 && before.has('SCHED_OTHER')) expect(only(await threadPolicies())).toBe('SCHED_OTHER');
    } finally {
      await running.close();
    }
  });

  it('the default puts every thread, the sandbox workers included, under SCHED_BATCH', async () => {
    const running = await startTestExecutor({ dir: path.join(dir, 'batch'), actions: ['transform'], callers: [newCaller('alice')] });
    try {
      expect(running.config.scheduling).toBe('batch');
      const policies = await threadPolicies();
      expect(only(policies)).toBe('SCHED_BATCH');
      expect(total(policies)).toBeGreaterThanOrEqual(running.config.limits.poolSize + 1);
      const ready = await fetch(new URL('/readyz', running.url));
      expect(ready.status).toBe(200);
    } finally {
      await running.close();
    }
  });
});
