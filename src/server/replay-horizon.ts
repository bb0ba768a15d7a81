/**
 * When a restarted executor may accept signed requests again. Its replay cache starts empty, and
 * a request the process before it accepted stays fresh for 300 s, so the executor refuses
 * signatures created before a horizon that no such request can reach: one accepted at time t
 * carried `created` ≤ t + DEFAULT_MAX_FUTURE_SECONDS (the verifier's future tolerance), and
 * every earlier process had stopped accepting when this one took the state directory's lock
 * (or, after a clean stop, when it wrote its stop marker). Until the horizon the executor is not
 * ready (docs/executor.md, start-up).
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../util/files.ts';
import { readBoundedFile } from '../util/index.ts';

/** Written by a clean stop, read and removed by the next start. */
export const STOP_MARKER_FILE = 'stopped.json';
/**
 * The horizon each start computed, kept: a later start never accepts less. Without it, a horizon
 * set by a last run whose clock ran ahead would be forgotten by the start after next (the stop
 * marker is gone by then, and a crash in between falls back to this clock).
 */
export const HORIZON_FILE = 'replay-horizon.json';

export interface StopMarker {
  /** When the executor had stopped accepting requests (ms since the epoch, its clock). */
  readonly stoppedAt: number;
  /** The log's size then: a later run that crashed appended its attestation record after it. */
  readonly logSize: number;
}

/**
 * The earliest `created` (seconds since the epoch) a request signature may carry. Pure.
 * - An empty log: no executor ever listened here (each logs its attestation record first), so
 *   nothing can be replayed; signatures made before this start are refused all the same.
 * - A stop marker matching the log: the last run stopped cleanly at `stoppedAt` (by its clock;
 *   a marker from the future therefore means a long wait, which the executor logs).
 * - Otherwise the last run may have crashed: it stopped accepting before the lock was taken.
 */
export function replayNotBefore(p: { readonly lockTakenAt: number; readonly logSizeAtOpen: number; readonly marker: StopMarker | undefined; readonly maxFutureSeconds: number }): number {
  const started = Math.floor(p.lockTakenAt / 1000);
  if (p.logSizeAtOpen === 0) return started;
  // The marker's time is the last run's clock, like the `created` values it accepted: counting
  // from it stays safe whatever this clock says, even one that stepped back since.
  const lastAccepted = p.marker !== undefined && p.marker.logSize === p.logSizeAtOpen ? p.marker.stoppedAt : p.lockTakenAt;
  return Math.max(started, Math.floor(lastAccepted / 1000) + p.maxFutureSeconds + 1);
}

/** The stop marker of `stateDir`, removed; undefined if absent or not one (then the last run is taken to have crashed). */
export async function takeStopMarker(stateDir: string): Promise<StopMarker | undefined> {
  const file = path.join(stateDir, STOP_MARKER_FILE);
  let marker: StopMarker | undefined;
  try {
    const value = JSON.parse((await readBoundedFile(file, 1024)).toString('utf8')) as Partial<StopMarker> | null;
    if (value && Number.isSafeInteger(value.stoppedAt) && value.stoppedAt! >= 0 && Number.isSafeInteger(value.logSize) && value.logSize! >= 0) {
      marker = { stoppedAt: value.stoppedAt!, logSize: value.logSize! };
    }
  } catch {
    // absent, unreadable or malformed: the conservative horizon applies
  }
  // Left in place (say it is a directory), it cannot mislead a later start: this start's
  // attestation record grows the log past the size it records.
  await rm(file, { force: true }).catch(() => undefined);
  return marker;
}

/** The horizon a previous start kept (seconds), or 0 if none is readable. */
export async function readKeptHorizon(stateDir: string): Promise<number> {
  try {
    const value = JSON.parse((await readBoundedFile(path.join(stateDir, HORIZON_FILE), 1024)).toString('utf8')) as { notBefore?: unknown } | null;
    return value && Number.isSafeInteger(value.notBefore) && (value.notBefore as number) > 0 ? (value.notBefore as number) : 0;
  } catch {
    return 0;
  }
}

/** Keep `notBefore` durably before the executor listens (atomic write and fsync). */
export async function keepHorizon(stateDir: string, notBefore: number): Promise<void> {
  await writeFileAtomic(path.join(stateDir, HORIZON_FILE), `${JSON.stringify({ notBefore })}\n`, 0o600);
}

export async function writeStopMarker(stateDir: string, marker: StopMarker): Promise<void> {
  await writeFileAtomic(path.join(stateDir, STOP_MARKER_FILE), `${JSON.stringify(marker)}\n`, 0o600);
}
