/**
 * The Linux CPU scheduling policy of a process's threads.
 *
 * The executor is a pipeline of threads that hand each action to one another several times (event
 * loop → sandbox worker → event loop → libuv's file threads → event loop). A thread woken under
 * the default policy, SCHED_OTHER, preempts the thread on its core whenever the scheduler would
 * pick it next, which a thread that has been sleeping usually is; with every core busy, the event
 * loop thus interrupts a sandbox worker (emptying its caches) at many of those hand-offs, and is
 * interrupted in turn. A woken SCHED_BATCH thread does not preempt: it runs at once on an idle
 * core, and on a busy one when the running thread's slice ends (noticed at the next scheduler
 * tick), and then handles everything that arrived meanwhile in one go. docs/executor.md ("The
 * dispatch path and its cost") has the measurements.
 *
 * Node has no binding for sched_setscheduler(2), so util-linux's `chrt` sets the policy of every
 * thread of the process (`--all-tasks`); threads created later inherit their creator's. It is run
 * from an absolute path with an empty environment, and the result is read back from /proc (field
 * 41 of each thread's `stat`) rather than taken from its exit status. Only threads under
 * SCHED_OTHER or SCHED_BATCH are moved: a process started under a real-time policy or SCHED_IDLE
 * is left as it is.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readFile, readdir } from 'node:fs/promises';

export type SchedulingPolicy = 'SCHED_OTHER' | 'SCHED_FIFO' | 'SCHED_RR' | 'SCHED_BATCH' | 'SCHED_IDLE' | 'SCHED_DEADLINE';

const POLICY_NUMBERS: Readonly<Record<number, SchedulingPolicy>> = {
  0: 'SCHED_OTHER', 1: 'SCHED_FIFO', 2: 'SCHED_RR', 3: 'SCHED_BATCH', 5: 'SCHED_IDLE', 6: 'SCHED_DEADLINE',
};

/** Where util-linux installs `chrt` (Debian, Ubuntu, Fedora, Alpine's util-linux-misc). */
const CHRT_PATHS = ['/usr/bin/chrt', '/bin/chrt'] as const;

export type SchedulingResult =
  | { readonly applied: true; readonly policy: SchedulingPolicy; readonly threads: number }
  /** `policies`: how many threads run under each policy now (empty when the process is gone). */
  | { readonly applied: false; readonly reason: string; readonly policies: Readonly<Partial<Record<SchedulingPolicy, number>>> };

export interface SchedulingOptions {
  /** Absolute path of `chrt` (default: the first of /usr/bin/chrt and /bin/chrt that exists). */
  readonly chrt?: string;
  /** How long one `chrt` run may take before it is killed (default 5 s). */
  readonly timeoutMs?: number;
}

/**
 * Puts every thread of `pid` (default: this process) under SCHED_BATCH ('batch') or SCHED_OTHER
 * ('other'). Never throws. `applied` is true only when every thread was found under the policy
 * afterwards; a thread ending while `chrt` walks the list makes it stop early, so it is run a
 * second time before giving up. The caller must own `pid` and know it is alive: like kill(2),
 * this cannot tell a reused pid from the process it meant.
 */
export async function setSchedulingPolicy(policy: 'batch' | 'other', pid: number = process.pid, options: SchedulingOptions = {}): Promise<SchedulingResult> {
  const notApplied = async (reason: string): Promise<SchedulingResult> => ({ applied: false, reason, policies: Object.fromEntries(await threadPolicies(pid)) });
  if (process.platform !== 'linux') return { applied: false, reason: 'scheduling policies are only set on Linux', policies: {} };
  if (!Number.isSafeInteger(pid) || pid <= 0) return { applied: false, reason: `not a process id: ${String(pid)}`, policies: {} };
  const target: SchedulingPolicy = policy === 'batch' ? 'SCHED_BATCH' : 'SCHED_OTHER';
  const before = await threadPolicies(pid);
  if (before.size === 0) return notApplied(`no process ${pid}`);
  const others = [...before.keys()].filter((p) => p !== 'SCHED_OTHER' && p !== 'SCHED_BATCH');
  if (others.length > 0) return notApplied(`threads run under ${others.join(', ')}, which is left as it is`);
  if (only(before) === target) return { applied: true, policy: target, threads: total(before) };
  const chrt = options.chrt ?? (await firstExecutable(CHRT_PATHS));
  if (chrt === undefined) return notApplied(`chrt not found at ${CHRT_PATHS.join(' or ')} (it comes with util-linux)`);
  let failure = '';
  for (let attempt = 0; attempt < 2; attempt++) {
    const error = await runChrt(chrt, target, pid, options.timeoutMs ?? 5_000);
    const after = await threadPolicies(pid);
    if (only(after) === target) return { applied: true, policy: target, threads: total(after) };
    failure = error ?? `${count(after, target)} of ${total(after)} threads are under ${target}`;
  }
  return notApplied(failure);
}

function only(policies: ReadonlyMap<SchedulingPolicy, number>): SchedulingPolicy | undefined {
  return policies.size === 1 ? [...policies.keys()][0] : undefined;
}

const count = (policies: ReadonlyMap<SchedulingPolicy, number>, p: SchedulingPolicy) => policies.get(p) ?? 0;
const total = (policies: ReadonlyMap<SchedulingPolicy, number>) => [...policies.values()].reduce((a, b) => a + b, 0);

async function firstExecutable(paths: readonly string[]): Promise<string | undefined> {
  for (const p of paths) if (await access(p, constants.X_OK).then(() => true, () => false)) return p;
  return undefined;
}

/** Runs chrt once; resolves with its error, or undefined when it exited 0. Settles by the deadline whatever the child does. */
function runChrt(chrt: string, target: SchedulingPolicy, pid: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    let stderr = '';
    let settled = false;
    const settle = (error: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(error);
    };
    const flag = target === 'SCHED_BATCH' ? '--batch' : '--other';
    const child = spawn(chrt, [flag, '--all-tasks', '--pid', '0', String(pid)], { env: { LC_ALL: 'C' }, stdio: ['ignore', 'ignore', 'pipe'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      settle(`${chrt} did not finish within ${timeoutMs} ms`);
    }, timeoutMs);
    child.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString('utf8');
    });
    child.once('error', (err: NodeJS.ErrnoException) => settle(`${chrt} could not be run: ${err.code ?? err.message}`));
    // 'exit', not 'close': a descendant holding stderr open must not hold this up.
    child.once('exit', (code, signal) => settle(code === 0 ? undefined : `${chrt} failed (${signal ?? `exit ${code}`}): ${firstLine(stderr)}`));
  });
}

function firstLine(text: string): string {
  return text.split('\n').find((l) => l.trim() !== '')?.trim().replace(/[^\x20-\x7e]/g, '?').slice(0, 200) ?? '';
}

/**
 * The policy in one line of `/proc/<pid>/task/<tid>/stat`, or undefined when the line is not one.
 * The command name (field 2) is in parentheses and may itself hold spaces and parentheses, so
 * fields are counted from the last `)`.
 */
export function policyFromStat(line: string): SchedulingPolicy | undefined {
  const end = line.lastIndexOf(')');
  if (end < 0) return undefined;
  const fields = line.slice(end + 1).trim().split(/\s+/);
  // fields[0] is field 3 (state); policy is field 41.
  const value = fields[41 - 3];
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return POLICY_NUMBERS[Number(value)];
}

/** How many threads of `pid` run under each policy; empty outside Linux or when there is no such process. */
export async function threadPolicies(pid: number = process.pid): Promise<Map<SchedulingPolicy, number>> {
  const counts = new Map<SchedulingPolicy, number>();
  if (process.platform !== 'linux' || !Number.isSafeInteger(pid) || pid <= 0) return counts;
  const taskDir = `/proc/${pid}/task`;
  const tids = await readdir(taskDir).catch(() => [] as string[]);
  for (const tid of tids) {
    // A thread may end between the listing and the read.
    const line = await readFile(`${taskDir}/${tid}/stat`, 'utf8').catch(() => undefined);
    const policy = line === undefined ? undefined : policyFromStat(line);
    if (policy) counts.set(policy, (counts.get(policy) ?? 0) + 1);
  }
  return counts;
}
