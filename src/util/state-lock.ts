/**
 * One process at a time per state directory. Its logs have one writer: the ledger has no
 * cross-process locking, and opening a ledger repairs a torn tail, which would cut what another
 * process is writing. proper-lockfile holds a lock directory whose mtime the owner refreshes
 * every LOCK_STALE_MS / 2; a lock not refreshed for LOCK_STALE_MS (its owner died or hung) is
 * taken over. Unlike a pid file, that holds across the pid namespaces of containers sharing a
 * volume, and after a container restart that gives the new process its predecessor's pid.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { AttexError } from '../errors/index.ts';

/** A lock not refreshed for this long is taken over (proper-lockfile's minimum is 5 s). */
export const LOCK_STALE_MS = 10_000;
/** The lock's name inside the state directory. */
export const LOCK_NAME = 'state.lock';
/** The default wait: long enough for the lock of a process that died to go stale. */
export const LOCK_TAKEOVER_WAIT_MS = LOCK_STALE_MS + 2_000;

export interface StateDirLock {
  /** When it was taken (ms since the epoch): every earlier owner had stopped by then. */
  readonly takenAt: number;
  /** Idempotent. */
  release(): Promise<void>;
}

export interface LockOptions {
  /** The lock's name inside the directory (default LOCK_NAME). */
  readonly name?: string;
  /**
   * How long to wait for a lock held by another process (default LOCK_TAKEOVER_WAIT_MS, so a
   * restart after a crash waits instead of failing).
   */
  readonly waitMs?: number;
  /**
   * The error codes its owner documents (default `state.locked` and `state.io`), and what to tell
   * the operator when the lock is held.
   */
  readonly codes?: { readonly locked: string; readonly io: string; readonly lockedHint?: string };
  /** Called once if the lock is held by another process and this call waits for it. */
  readonly onWait?: () => void;
  /** Called once if the lock is lost (not refreshed in time, or taken over): stop writing. */
  readonly onLost: (err: Error) => void;
  readonly now?: () => number;
}

export type LockFailure = { readonly kind: 'locked' } | { readonly kind: 'io'; readonly code: string };

/** An AttexError with the owner's code, and what kind of failure it was. */
export class StateLockError extends AttexError {
  readonly failure: LockFailure;
  constructor(code: string, failure: LockFailure, message: string) {
    super(code, message);
    this.failure = failure;
  }
}

/** Take `dir`'s lock, creating `dir` (mode 0700) if needed. Rejects with StateLockError. */
export async function lockStateDirectory(dir: string, o: LockOptions): Promise<StateDirLock> {
  const waitMs = o.waitMs ?? LOCK_TAKEOVER_WAIT_MS;
  const now = o.now ?? Date.now;
  const codes = o.codes ?? { locked: 'state.locked', io: 'state.io' };
  const ioError = (code: string, message: string) => new StateLockError(codes.io, { kind: 'io', code }, message);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw ioError(code, `cannot create the state directory ${dir}: ${code}`);
  }
  // Waited on the monotonic clock: an injected `now` (a test's frozen clock) must not make it endless.
  const deadline = performance.now() + waitMs;
  const name = o.name ?? LOCK_NAME;
  let lost = false;
  let waiting = false;
  let races = 0;
  for (;;) {
    let code: string;
    try {
      const release = await lockfile.lock(dir, {
        lockfilePath: path.join(dir, name),
        stale: LOCK_STALE_MS,
        realpath: false,
        retries: 0,
        onCompromised: (err) => {
          if (lost) return;
          lost = true;
          o.onLost(err);
        },
      });
      let released: Promise<void> | undefined;
      return {
        takenAt: now(),
        release: () => (released ??= lost ? Promise.resolve() : release().catch(() => undefined)),
      };
    } catch (err) {
      code = (err as NodeJS.ErrnoException).code ?? 'error';
    }
    if (code === 'ENOTDIR') throw ioError(code, `${path.join(dir, name)} is not a directory: remove it if no attex process uses ${dir}`);
    // ENOENT: another process taking over the same stale lock removed it under this one
    // (proper-lockfile's takeover is not atomic): try again at once, a few times; then it is
    // something else (the directory itself removed, say).
    if (code === 'ENOENT' && ++races <= 3) continue;
    if (code !== 'ELOCKED') throw ioError(code, `cannot take the lock of ${dir}: ${code}`);
    if (performance.now() >= deadline) {
      const held = `${dir} is in use by another process (its ${name} was refreshed within the last ${LOCK_STALE_MS / 1000} s)`;
      throw new StateLockError(codes.locked, { kind: 'locked' }, codes.lockedHint ? `${held}: ${codes.lockedHint}` : held);
    }
    if (!waiting) {
      waiting = true;
      o.onWait?.();
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(500, Math.max(0, deadline - performance.now()))));
  }
}
