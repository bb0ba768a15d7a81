/**
 * Layout of the SharedArrayBuffer a worker shares with the pool: a host-reply flag the worker
 * waits on, the id of the run in progress, whether a warm instance is ready (so the pool can
 * prefer that worker without a message per run), and the worker thread's CPU time (µs) at the
 * run's start, so the pool can enforce `cpu_ms` while the guest is still running.
 */
export const SIGNAL = { hostReply: 0, runId: 1, ready: 2 } as const;
export const SIGNAL_BYTES = 24;

export function signalViews(sab: SharedArrayBuffer): { ints: Int32Array; cpuStart: Float64Array } {
  return { ints: new Int32Array(sab, 0, 3), cpuStart: new Float64Array(sab, 16, 1) };
}
