/**
 * The Linux CPU scheduling policy of a process's threads.
 *
 * The executor is a pipeline of threads that hand each action to one another several times (event
 * loop → sandbox worker → event loop → libuv's file threads → event loop). Under the default
 * policy, SCHED_OTHER, every hand-off wakes a thread that preempts whichever thread holds the
 * core, so with every core busy each action costs several context switches and the caches they
 * empty. SCHED_BATCH tells the kernel that these threads are throughput work: a woken thread
 * still runs at once on an idle core, but on a busy one it waits for the running thread's time
 * slice instead of preempting it, and then handles everything that arrived meanwhile in one go
 * (docs/executor.md, "The dispatch path and its cost", has the measurements).
 *
 * Node has no binding for sched_setscheduler(2), so util-linux's `chrt` sets the policy of every
 * thread of the process (`--all-tasks`); threads created later inherit their creator's. Moving
 * between SCHED_OTHER and SCHED_BATCH needs no privilege. Reading the policies back comes from
 * /proc (field 41 of each thread's `stat`).
 */
import { execFile } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';

export type SchedulingPolicy = 'SCHED_OTHER' | 'SCHED_FIFO' | 'SCHED_RR' | 'SCHED_BATCH' | 'SCHED_IDLE' | 'SCHED_DEADLINE';

const POLICY_NUMBERS: Readonly<Record<number, SchedulingPolicy>> = {
  0: 'SCHED_OTHER', 1: 'SCHED_FIFO', 2: 'SCHED_RR', 3: 'SCHED_BATCH', 5: 'SCHED_IDLE', 6: 'SCHED_DEADLINE',
};

export type SchedulingResult =
  | { readonly applied: true; readonly policy: SchedulingPolicy }
  | { readonly applied: false; readonly reason: string };

export interface SchedulingOptions {
  /** The `chrt` program (default: `chrt` on the PATH). */
  readonly chrt?: string;
  /** How long `chrt` may take (default 5 s). */
  readonly timeoutMs?: number;
}

/**
 * Puts every thread of `pid` under SCHED_BATCH ('batch') or back under SCHED_OTHER ('other').
 * Never throws: a system without `chrt`, or one that refuses, gets `applied: false` and the
 * reason, and the process keeps its policy.
 */
export function setSchedulingPolicy(policy: 'batch' | 'other', pid: number = process.pid, options: SchedulingOptions = {}): Promise<SchedulingResult> {
  if (process.platform !== 'linux') return Promise.resolve({ applied: false, reason: 'scheduling policies are only set on Linux' });
  if (!Number.isSafeInteger(pid) || pid <= 0) return Promise.resolve({ applied: false, reason: `not a process id: ${String(pid)}` });
  const chrt = options.chrt ?? 'chrt';
  const flag = policy === 'batch' ? '--batch' : '--other';
  return new Promise((resolve) => {
    execFile(chrt, [flag, '--all-tasks', '--pid', '0', String(pid)], { timeout: options.timeoutMs ?? 5_000, maxBuffer: 64 * 1024 }, (err, _stdout, stderr) => {
      if (!err) return resolve({ applied: true, policy: policy === 'batch' ? 'SCHED_BATCH' : 'SCHED_OTHER' });
      const e = err as NodeJS.ErrnoException & { killed?: boolean };
      const reason = e.code === 'ENOENT'
        ? `${chrt} not found (it comes with util-linux)`
        : e.killed ? `${chrt} did not finish within ${options.timeoutMs ?? 5_000} ms`
          : `${chrt} failed: ${firstLine(String(stderr)) || e.message}`;
      resolve({ applied: false, reason });
    });
  });
}

function firstLine(text: string): string {
  return text.split('\n').find((l) => l.trim() !== '')?.trim().slice(0, 200) ?? '';
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

/** How many threads of `pid` run under each policy (Linux; empty elsewhere). */
export async function threadPolicies(pid: number = process.pid): Promise<Map<SchedulingPolicy, number>> {
  const counts = new Map<SchedulingPolicy, number>();
  if (process.platform !== 'linux') return counts;
  const taskDir = `/proc/${pid}/task`;
  for (const tid of await readdir(taskDir)) {
    // A thread may end between the listing and the read.
    const line = await readFile(`${taskDir}/${tid}/stat`, 'utf8').catch(() => undefined);
    const policy = line === undefined ? undefined : policyFromStat(line);
    if (policy) counts.set(policy, (counts.get(policy) ?? 0) + 1);
  }
  return counts;
}
