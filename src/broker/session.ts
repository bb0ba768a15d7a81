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

/**
 * What a session is charged against the table's byte budget: its strings (one byte per character
 * in V8's one-byte strings: ids, nonces and tokens are ASCII) plus the objects around them.
 */
function sessionBytes(s: Session): number {
  return SESSION_OVERHEAD_BYTES + s.id.length + s.nonce.length + (s.state === 'attested' ? s.token.length : 0);
}
const SESSION_OVERHEAD_BYTES = 256;

export class SessionTable {
  readonly #sessions = new Map<string, Session>();
  readonly #maxSessions: number;
  readonly #maxBytes: number;
  #bytes = 0;

  /**
   * `maxSessions` (default 100,000) and `maxBytes` (default 256 MiB) bound the table: past
   * either, expired sessions are swept and then the oldest dropped. An attested session holds its
   * token (~1-3 KB, up to ~38 KB with an 8192-bit TEE key and long claims), which is why a count
   * alone does not bound the memory.
   */
  constructor(opts: { maxSessions?: number; maxBytes?: number } = {}) {
    this.#maxSessions = opts.maxSessions ?? 100_000;
    this.#maxBytes = opts.maxBytes ?? 256 * 1024 * 1024;
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** What the sessions held are charged, in bytes (see sessionBytes). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Open an authed session with a fresh 32-byte nonce (standard base64, as Trustee sends it). */
  open(tee: SupportedTee, now: Date, ttlSeconds: number): Session {
    const session: Session = {
      state: 'authed',
      id: randomBytes(32).toString('base64url'),
      tee,
      nonce: randomBytes(NONCE_BYTES).toString('base64'),
      expiresAt: now.getTime() + ttlSeconds * 1000,
      nonceUsed: false,
    };
    this.#put(session, now);
    return session;
  }

  lookup(id: string, now: Date): SessionLookup {
    const session = this.#sessions.get(id);
    if (session === undefined) return { ok: false, reason: 'unknown' };
    if (session.expiresAt <= now.getTime()) {
      this.#delete(id);
      return { ok: false, reason: 'expired' };
    }
    return { ok: true, session };
  }

  /**
   * Mark an attestation as accepted: the session now carries the token until `expiresAt`. A
   * session dropped while its evidence was verified (a full table evicts the oldest) is put
   * back: its token is signed and audited by then, so it must be usable. Room is made by
   * dropping other sessions, never this one.
   */
  attest(s: Session, token: string, expiresAt: number, now: Date): Session {
    const attested: Session = { state: 'attested', id: s.id, tee: s.tee, nonce: s.nonce, expiresAt, token };
    this.#put(attested, now);
    return attested;
  }

  sweep(now: Date): void {
    const t = now.getTime();
    for (const [id, s] of this.#sessions) if (s.expiresAt <= t) this.#delete(id);
  }

  /** Insert or replace `session`, then drop expired and then the oldest others until within bounds. */
  #put(session: Session, now: Date): void {
    const previous = this.#sessions.get(session.id);
    if (previous !== undefined) this.#bytes -= sessionBytes(previous);
    this.#sessions.set(session.id, session);
    this.#bytes += sessionBytes(session);
    if (!this.#over()) return;
    this.sweep(now);
    for (const id of this.#sessions.keys()) {
      if (!this.#over()) break;
      if (id !== session.id) this.#delete(id); // Map keeps insertion order: oldest first
    }
  }

  #over(): boolean {
    return this.#sessions.size > this.#maxSessions || this.#bytes > this.#maxBytes;
  }

  #delete(id: string): void {
    const s = this.#sessions.get(id);
    if (s === undefined) return;
    this.#sessions.delete(id);
    this.#bytes -= sessionBytes(s);
  }
}

/** What tokens and audit entries record instead of the session id itself (a bearer secret). */
export function sessionHash(id: string): string {
  return toHex(sha256(id));
}
