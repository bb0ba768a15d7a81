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
    const attested = table.attest(verifying, 'token', now.getTime() + 900_000);
    expect(attested).toMatchObject({ state: 'attested', id: verifying.id, token: 'token' });
    expect(table.lookup(verifying.id, now)).toMatchObject({ ok: true, session: { state: 'attested', token: 'token' } });
  });
});
