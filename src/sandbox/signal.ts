/**
 * Layout of the SharedArrayBuffer a worker shares with the pool:
 * - `hostReply`: the flag the worker waits on for a host call's answer;
 * - `runId`: the run in progress (0 when none), for the pool's CPU sampler;
 * - `ready`: whether a warm instance is ready, so the pool can prefer that worker without a
 *   message per run;
 * - claim words for actions the pool queued behind the current run. Each holds the run id of
 *   one such action until the worker takes it (compare-and-swap to 0, before starting it) or
 *   the pool takes it back (the same swap). Whichever swap succeeds decides, so a queued action
 *   runs in that worker exactly once or not at all. One word more than the pool may queue,
 *   because the pool queues another action as soon as it sees a result, possibly before the
 *   worker has claimed the one it moved on to;
 * - `cpuStart`: the worker thread's CPU time (µs) at the run's start, so the pool can enforce
 *   `cpu_ms` while the guest is still running.
 */
export const SIGNAL = { hostReply: 0, runId: 1, ready: 2, firstClaim: 3 } as const;
/** Claim words: one more than the actions the pool may queue behind a worker's run. */
export const CLAIM_WORDS = 4;
export const SIGNAL_BYTES = 40;

export function signalViews(sab: SharedArrayBuffer): { ints: Int32Array; cpuStart: Float64Array } {
  return { ints: new Int32Array(sab, 0, SIGNAL.firstClaim + CLAIM_WORDS), cpuStart: new Float64Array(sab, 32, 1) };
}
