/**
 * A restarted executor refuses what the process before it may have accepted: its replay cache
 * starts empty, so signatures created before its horizon are refused, and until the horizon it
 * accepts nothing (503 server.not-ready) rather than a fresh signature it cannot tell from a
 * replay. Real executors on loopback, restarted on the same state directory; time moves by a
 * clock offset.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STOP_MARKER_FILE, replayNotBefore } from '../../src/server/replay-horizon.ts';
import { newCaller, send, signedHeaders, startTestExecutor } from './helpers.ts';

describe('replay horizon (pure)', () => {
  const F = 10;
  const takenAt = 1_800_000_000_500;
  it('an empty log: nothing ever ran here, signatures from this start on', () => {
    expect(replayNotBefore({ lockTakenAt: takenAt, logSizeAtOpen: 0, marker: { stoppedAt: takenAt, logSize: 0 }, maxFutureSeconds: F })).toBe(1_800_000_000);
  });
  it('no stop marker, or one a later run outdated: past what the last run may have accepted before the lock was taken', () => {
    expect(replayNotBefore({ lockTakenAt: takenAt, logSizeAtOpen: 7, marker: undefined, maxFutureSeconds: F })).toBe(1_800_000_011);
    expect(replayNotBefore({ lockTakenAt: takenAt, logSizeAtOpen: 7, marker: { stoppedAt: takenAt - 60_000, logSize: 6 }, maxFutureSeconds: F })).toBe(1_800_000_011);
  });
  it('a clean stop: from the stop, by the last run\'s clock (even ahead of this one), never before this start', () => {
    expect(replayNotBefore({ lockTakenAt: takenAt, logSizeAtOpen: 7, marker: { stoppedAt: takenAt - 4_000, logSize: 7 }, maxFutureSeconds: F })).toBe(1_800_000_007);
    expect(replayNotBefore({ lockTakenAt: takenAt, logSizeAtOpen: 7, marker: { stoppedAt: takenAt - 60_000, logSize: 7 }, maxFutureSeconds: F })).toBe(1_800_000_000);
    // This clock stepped back 2 s since the stop: what the last run accepted is still refused.
    expect(replayNotBefore({ lockTakenAt: takenAt, logSizeAtOpen: 7, marker: { stoppedAt: takenAt + 2_000, logSize: 7 }, maxFutureSeconds: F })).toBe(1_800_000_013);
  });
});

describe('replay across a restart', () => {
  let dir: string;
  let offset = 0;
  const clock = () => new Date(Date.now() + offset);
  const alice = newCaller('alice');
  const body = new TextEncoder().encode(JSON.stringify({ items: [{ category: 'a', amount: 1 }] }));
  const start = () => startTestExecutor({ dir, actions: ['transform'], callers: [alice], clock, lockWaitMs: 0 });
  const post = (url: string, headers: Record<string, string>) => send(url, 'POST', '/v1/actions/transform', body, headers);
  const fresh = () => signedHeaders('transform', body, alice, {}, clock());

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'attex-horizon-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('after a crash: nothing is accepted until the horizon; then the old request is stale and a new one runs', async () => {
    const first = await start();
    expect(first.executor.readiness().ready).toBe(true); // a fresh state directory: no wait
    const captured = await signedHeaders('transform', body, alice, {}, new Date(clock().getTime() + 8_000)); // a signer clock 8 s ahead
    expect((await post(first.url, captured)).status).toBe(200);
    await first.close();
    await rm(path.join(dir, 'state', STOP_MARKER_FILE)); // as if it had crashed

    const second = await start();
    try {
      const size = second.executor.ledgerSize();
      expect(second.executor.readiness().checks['replayWindowClosed']).toBe(false);
      expect((await send(second.url, 'GET', '/readyz', undefined, {})).status).toBe(503);
      for (const headers of [captured, await fresh()]) {
        const r = await post(second.url, headers);
        expect(r.status).toBe(503);
        expect(r.body['code']).toBe('server.not-ready');
        expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
      }
      expect(second.executor.ledgerSize()).toBe(size);

      offset += 12_000;
      expect(second.executor.readiness().ready).toBe(true);
      const replayed = await post(second.url, captured);
      expect(replayed.status).toBe(401);
      expect(replayed.body['code']).toBe('auth.stale-signature');
      expect(second.executor.ledgerSize()).toBe(size);
      expect((await post(second.url, await fresh())).status).toBe(200);
    } finally {
      await second.close();
    }
  }, 60_000);

  it('after a clean stop the horizon counts from the stop, and a later start is ready at once', async () => {
    const { stoppedAt } = JSON.parse(await readFile(path.join(dir, 'state', STOP_MARKER_FILE), 'utf8')) as { stoppedAt: number };
    const third = await start();
    try {
      expect(third.executor.replayNotBefore).toBe(Math.floor(stoppedAt / 1000) + 11);
    } finally {
      await third.close();
    }
    offset += 12_000;
    const fourth = await start();
    try {
      expect(fourth.executor.readiness().ready).toBe(true);
      expect((await post(fourth.url, await fresh())).status).toBe(200);
    } finally {
      await fourth.close();
    }
  }, 60_000);

  it('a stop marker that is not one (malformed, a directory, a FIFO) counts as a crash, and start-up goes on', async () => {
    const marker = path.join(dir, 'state', STOP_MARKER_FILE);
    const hostile: Array<[string, () => Promise<void>]> = [
      ['malformed', () => writeFile(marker, '{"stoppedAt": "soon", "logSize": 1e400}')],
      ['a directory', async () => {
        await rm(marker, { force: true });
        await mkdir(marker);
      }],
      ['a FIFO', async () => {
        await rm(marker, { recursive: true, force: true });
        execFileSync('mkfifo', [marker]);
      }],
    ];
    for (const [what, make] of hostile) {
      offset += 60_000; // long after the last stop: a genuine marker would mean no wait
      await make();
      const before = Math.floor(clock().getTime() / 1000);
      const running = await start();
      try {
        expect(running.executor.replayNotBefore, what).toBeGreaterThanOrEqual(before + 11);
        expect(running.executor.readiness().checks['replayWindowClosed'], what).toBe(false);
      } finally {
        await running.close();
      }
      await rm(marker, { recursive: true, force: true });
    }
  }, 60_000);

  it('a horizon set by a run whose clock was ahead is kept through later restarts, clean or not', async () => {
    const normal = offset;
    offset = normal + 3_600_000; // the last run's clock is an hour ahead
    const ahead = await start();
    await ahead.close();
    offset = normal;
    const behind = await start();
    const horizon = behind.executor.replayNotBefore;
    expect(horizon).toBeGreaterThanOrEqual(Math.floor(clock().getTime() / 1000) + 3_600);
    await behind.close();
    await rm(path.join(dir, 'state', STOP_MARKER_FILE), { force: true }); // and then a crash
    const after = await start();
    try {
      expect(after.executor.replayNotBefore).toBeGreaterThanOrEqual(horizon);
      expect(after.executor.readiness().checks['replayWindowClosed']).toBe(false);
    } finally {
      await after.close();
    }
  }, 60_000);
});
