/**
 * RCAR sessions, keyed by the `kbs-session-id` cookie. A session starts `authed` holding the
 * challenge nonce, which may be presented once: the first /attest consumes it whatever the
 * outcome, so a replay of the same Attestation is refused. A successful attestation makes the
 * session `attested` and holds the issued token until it expires. Time comes from the injected
 * clock only; the table is bounded and sweeps expired sessions as it grows.
 */
import { randomBytes } from 'node:crypto';
import { toHex, sha256 } from '../util/index.ts';
import type { SupportedTee } from './protocol.ts';
import { NONCE_BYTES } from './protocol.ts';

export type Session =
  | { readonly state: 'authed'; readonly id: string; readonly tee: SupportedTee; readonly nonce: string; readonly expiresAt: number; nonceUsed: boolean }
  | { readonly state: 'attested'; readonly id: string; readonly tee: SupportedTee; readonly nonce: string; readonly expiresAt: number; readonly token: string };

export type SessionLookup =
  | { readonly ok: true; readonly session: Session }
  | { readonly ok: false; readonly reason: 'unknown' | 'expired' };

export class SessionTable {
  readonly #sessions = new Map<string, Session>();
  readonly #maxSessions: number;

  constructor(opts: { maxSessions?: number } = {}) {
    this.#maxSessions = opts.maxSessions ?? 100_000;
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** Open an authed session with a fresh 32-byte nonce (standard base64, as Trustee sends it). */
  open(tee: SupportedTee, now: Date, ttlSeconds: number): Session {
    if (this.#sessions.size >= this.#maxSessions) this.sweep(now);
    if (this.#sessions.size >= this.#maxSessions) {
      // Still full of live sessions: drop the oldest (Map keeps insertion order).
      const oldest = this.#sessions.keys().next().value;
      if (oldest !== undefined) this.#sessions.delete(oldest);
    }
    const session: Session = {
      state: 'authed',
      id: randomBytes(32).toString('base64url'),
      tee,
      nonce: randomBytes(NONCE_BYTES).toString('base64'),
      expiresAt: now.getTime() + ttlSeconds * 1000,
      nonceUsed: false,
    };
    this.#sessions.set(session.id, session);
    return session;
  }

  lookup(id: string, now: Date): SessionLookup {
    const session = this.#sessions.get(id);
    if (session === undefined) return { ok: false, reason: 'unknown' };
    if (session.expiresAt <= now.getTime()) {
      this.#sessions.delete(id);
      return { ok: false, reason: 'expired' };
    }
    return { ok: true, session };
  }

  /**
   * Mark an attestation as accepted: the session now carries the token until `expiresAt`. A
   * session dropped while its evidence was verified (a full table evicts the oldest) is put
   * back: its token is signed and audited by then, so it must be usable.
   */
  attest(s: Session, token: string, expiresAt: number): Session {
    const attested: Session = { state: 'attested', id: s.id, tee: s.tee, nonce: s.nonce, expiresAt, token };
    this.#sessions.set(s.id, attested);
    return attested;
  }

  sweep(now: Date): void {
    const t = now.getTime();
    for (const [id, s] of this.#sessions) if (s.expiresAt <= t) this.#sessions.delete(id);
  }
}

/** What tokens and audit entries record instead of the session id itself (a bearer secret). */
export function sessionHash(id: string): string {
  return toHex(sha256(id));
}
