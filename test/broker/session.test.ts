/**
 * The broker's session table bounds memory by dropping the oldest session when full. A session
 * dropped while its evidence is being verified must still end attested: by then its token is
 * signed and audited as issued.
 */
import { describe, expect, it } from 'vitest';
import { SessionTable } from '../../src/broker/session.ts';

describe('SessionTable', () => {
  it('a session evicted while its evidence was verified is attested all the same', () => {
    const now = new Date('2026-12-04T12:00:00Z');
    const table = new SessionTable({ maxSessions: 2 });
    const verifying = table.open('snp', now, 300);
    table.open('snp', now, 300);
    table.open('snp', now, 300); // full: the oldest (verifying) is dropped
    expect(table.lookup(verifying.id, now)).toEqual({ ok: false, reason: 'unknown' });
    const attested = table.attest(verifying, 'token', now.getTime() + 900_000, now);
    expect(attested).toMatchObject({ state: 'attested', id: verifying.id, token: 'token' });
    expect(table.lookup(verifying.id, now)).toMatchObject({ ok: true, session: { state: 'attested', token: 'token' } });
  });

  it('is bounded in bytes too: large tokens push out the oldest sessions, never the one being attested', () => {
    const now = new Date('2026-12-04T12:00:00Z');
    const later = now.getTime() + 900_000;
    const table = new SessionTable({ maxBytes: 100_000 });
    const sessions = Array.from({ length: 10 }, () => table.open('snp', now, 300));
    const small = table.bytes;
    expect(small).toBeGreaterThan(0);
    expect(small).toBeLessThan(10 * 1024);
    const token = 'x'.repeat(38_000);
    for (const s of sessions.slice(0, 5)) table.attest(s, token, later, now);
    // Each attested session holds ~38 KB: only two fit in 100 KB with the small ones.
    expect(table.bytes).toBeLessThanOrEqual(100_000);
    expect(table.lookup(sessions[4]!.id, now)).toMatchObject({ ok: true, session: { state: 'attested' } });
    expect(table.lookup(sessions[0]!.id, now)).toEqual({ ok: false, reason: 'unknown' });
    expect(table.lookup(sessions[9]!.id, now)).toMatchObject({ ok: true, session: { state: 'authed' } });
    // The oldest being attested is kept; others make room.
    const oldest = [...sessions].find((s) => table.lookup(s.id, now).ok)!;
    table.attest(oldest, token, later, now);
    expect(table.lookup(oldest.id, now)).toMatchObject({ ok: true, session: { state: 'attested' } });
    expect(table.bytes).toBeLessThanOrEqual(100_000);
    // Expired sessions give their bytes back.
    table.sweep(new Date(later + 1));
    expect(table.size).toBe(0);
    expect(table.bytes).toBe(0);
  });
});
