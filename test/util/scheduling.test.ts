/**
 * Thread scheduling policies, on real processes: every thread of a process is moved to
 * SCHED_BATCH and back, threads started afterwards inherit the policy, the result is read back
 * from /proc rather than taken from chrt's exit status, a missing, failing or hanging chrt and a
 * process under SCHED_IDLE are reported instead of thrown, and the executor applies its
 * `scheduling` setting to its own threads (the sandbox workers included) before serving, or
 * starts anyway with a warning.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
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
async function threadedChild(prefix: readonly string[] = []): Promise<ChildProcess> {
  const script = `const { Worker } = require('node:worker_threads');
const park = () => new Worker('setInterval(() => {}, 1000)', { eval: true }).once('online', () => console.log('worker'));
park();
process.stdin.on('data', park);
setInterval(() => {}, 1000);`;
  const [command, ...args] = [...prefix, process.execPath, '-e', script];
  const child = spawn(command!, args, { stdio: ['pipe', 'pipe', 'inherit'] });
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
  let dir: string;
  /** An executable shell script standing in for chrt. */
  const fakeChrt = async (name: string, body: string) => {
    const file = path.join(dir, name);
    await writeFile(file, `#!/bin/sh\n${body}\n`);
    await chmod(file, 0o755);
    return file;
  };
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'attex-chrt-'));
    child = await threadedChild();
  });
  afterAll(async () => {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('moves every thread to SCHED_BATCH, threads started later inherit it, and back', async () => {
    const pid = child.pid!;
    expect(await setSchedulingPolicy('other', pid)).toMatchObject({ applied: true, policy: 'SCHED_OTHER' });
    const batch = await setSchedulingPolicy('batch', pid);
    const before = await threadPolicies(pid);
    expect(only(before)).toBe('SCHED_BATCH');
    expect(total(before)).toBeGreaterThan(4); // main, worker, V8's and libuv's threads
    expect(batch).toEqual({ applied: true, policy: 'SCHED_BATCH', threads: total(before) });
    child.stdin!.write('\n');
    await nextWorker(child);
    const after = await threadPolicies(pid);
    expect(only(after)).toBe('SCHED_BATCH');
    expect(total(after)).toBeGreaterThan(total(before));
    expect(await setSchedulingPolicy('other', pid)).toMatchObject({ applied: true, policy: 'SCHED_OTHER' });
    expect(only(await threadPolicies(pid))).toBe('SCHED_OTHER');
  });

  it('reads the result back instead of trusting chrt, and reports a missing, failing or hanging one', async () => {
    const pid = child.pid!;
    expect(await setSchedulingPolicy('other', pid)).toMatchObject({ applied: true });
    const unchanged = { SCHED_OTHER: total(await threadPolicies(pid)) };
    // Exits 0 without changing anything.
    expect(await setSchedulingPolicy('batch', pid, { chrt: await fakeChrt('liar', 'exit 0') })).toEqual({
      applied: false, reason: `0 of ${unchanged.SCHED_OTHER} threads are under SCHED_BATCH`, policies: unchanged,
    });
    expect(await setSchedulingPolicy('batch', pid, { chrt: await fakeChrt('refuses', 'echo "chrt: failed to set pid 1\'s policy: Operation not permitted" >&2; exit 1') })).toEqual({
      applied: false, reason: expect.stringMatching(/refuses failed \(exit 1\): chrt: failed to set pid 1's policy: Operation not permitted$/), policies: unchanged,
    });
    expect(await setSchedulingPolicy('batch', pid, { chrt: path.join(dir, 'missing') })).toMatchObject({ applied: false, reason: expect.stringMatching(/could not be run: ENOENT$/), policies: unchanged });
    // Ignores SIGTERM: killed at the deadline all the same, for each of the two attempts.
    const started = performance.now();
    const hung = await setSchedulingPolicy('batch', pid, { chrt: await fakeChrt('hangs', "trap '' TERM\nexec sleep 30"), timeoutMs: 300 });
    expect(hung).toMatchObject({ applied: false, reason: expect.stringMatching(/hangs did not finish within 300 ms$/), policies: unchanged });
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('leaves a process under SCHED_IDLE as it is, and refuses pids that are no process', async () => {
    const idle = await threadedChild(['chrt', '--idle', '0']);
    try {
      const policies = await threadPolicies(idle.pid!);
      expect(only(policies)).toBe('SCHED_IDLE');
      expect(await setSchedulingPolicy('batch', idle.pid!)).toEqual({ applied: false, reason: 'threads run under SCHED_IDLE, which is left as it is', policies: Object.fromEntries(policies) });
    } finally {
      idle.kill('SIGKILL');
    }
    // Above the kernel's largest pid.
    expect(await setSchedulingPolicy('batch', 2 ** 22 + 1)).toEqual({ applied: false, reason: `no process ${2 ** 22 + 1}`, policies: {} });
    for (const pid of [0, -1, 1.5, Number.NaN]) expect(await setSchedulingPolicy('batch', pid)).toMatchObject({ applied: false, reason: expect.stringMatching(/^not a process id/), policies: {} });
  });
});

describe.runIf(linux)("the executor's scheduling setting", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'attex-sched-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const logged = () => {
    const lines: Array<{ level: number; msg: string; reason?: string; policies?: Record<string, number>; threads?: number }> = [];
    return { lines, logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) }) };
  };

  // In this order: the last one changes this test process for good.
  it('"inherit" leaves the threads as they were', async () => {
    const before = await threadPolicies();
    const running = await startTestExecutor({ dir: path.join(dir, 'inherit'), actions: ['transform'], callers: [newCaller('alice')], extra: { scheduling: 'inherit' } });
    try {
      expect(running.config.scheduling).toBe('inherit');
      expect(only(await threadPolicies())).toBe(only(before));
    } finally {
      await running.close();
    }
  });

  it('"batch" without a usable chrt starts anyway, with a warning that says why', async () => {
    const before = await threadPolicies();
    const { lines, logger } = logged();
    const running = await startTestExecutor({
      dir: path.join(dir, 'no-chrt'), actions: ['transform'], callers: [newCaller('alice')], extra: { scheduling: 'batch' }, logger, scheduling: { chrt: path.join(dir, 'no-such-chrt') },
    });
    try {
      expect((await fetch(new URL('/readyz', running.url))).status).toBe(200);
      expect(only(await threadPolicies())).toBe(only(before));
      const warning = lines.find((l) => l.msg.startsWith('could not schedule every thread as batch work'));
      expect(warning).toMatchObject({ level: 40, reason: expect.stringMatching(/no-such-chrt could not be run: ENOENT$/) });
      expect(Object.keys(warning!.policies!)).toEqual([only(before)]);
    } finally {
      await running.close();
    }
  });

  it('"batch" puts every thread, the sandbox workers included, under SCHED_BATCH', async () => {
    const { lines, logger } = logged();
    const running = await startTestExecutor({ dir: path.join(dir, 'batch'), actions: ['transform'], callers: [newCaller('alice')], extra: { scheduling: 'batch' }, logger });
    try {
      const policies = await threadPolicies();
      expect(only(policies)).toBe('SCHED_BATCH');
      expect(total(policies)).toBeGreaterThanOrEqual(running.config.limits.poolSize + 1);
      expect(lines.find((l) => l.msg.startsWith('threads scheduled as batch work'))?.threads).toBeGreaterThan(1);
      expect((await fetch(new URL('/readyz', running.url))).status).toBe(200);
    } finally {
      await running.close();
    }
  });
});
