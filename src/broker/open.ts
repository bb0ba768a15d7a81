/**
 * Open a broker on its state directory (the I/O edge): keys, encrypted secret store, audit
 * ledger, then the HTTP server. State directory layout (docs/broker.md):
 *
 *   secrets/                     encrypted secret records (AES-256-GCM under the operator key)
 *   audit/                       the audit transparency log (src/ledger layout)
 *   token-signing-key.jwk.json   ES256 key that signs EAR tokens (0600)
 *   audit-signing-key.seed       Ed25519 seed that signs audit DSSE envelopes (0600)
 *   audit-log-key.seed           Ed25519 seed that signs the audit log's checkpoints (0600)
 */
import { mkdir } from 'node:fs/promises';
import { AttexError } from '../errors/index.ts';
import path from 'node:path';
import type { Logger } from 'pino';
import { Ledger } from '../ledger/index.ts';
import { LOCK_TAKEOVER_WAIT_MS, lockStateDirectory } from '../util/index.ts';
import { ed25519PrivateKeyFromSeed, type ReceiptSigner } from '../receipts/index.ts';
import { createAuditLog, loadOrCreateAuditSigner, loadOrCreateSeed, type AuditLog } from './audit.ts';
import type { ResourcePolicy } from './policy/index.ts';
import { createBrokerServer, type BrokerServer, type BrokerTls } from './server.ts';
import { openSecretStore, type SecretStore } from './store/index.ts';
import { loadOrCreateTokenKey, type TokenKey } from './token.ts';
import type { EvidenceVerifier } from './verifier.ts';

export const AUDIT_LOG_NAME = 'attex-broker-audit';
const AUDIT_LOG_KEY_FILE = 'audit-log-key.seed';

export interface OpenBrokerOptions {
  readonly stateDir: string;
  readonly operatorKey: Uint8Array;
  readonly verifier: EvidenceVerifier;
  readonly resourcePolicy: ResourcePolicy;
  readonly clock?: () => Date;
  readonly logger?: Logger;
  readonly issuer?: string;
  readonly sessionTtlSeconds?: number;
  readonly tokenTtlSeconds?: number;
  /** Per-client-address request budget; see BrokerServerOptions.rateLimit. */
  readonly rateLimit?: { readonly ratePerSecond: number; readonly burst: number };
  /** Serve HTTPS (PEM certificate chain and key). */
  readonly tls?: BrokerTls;
  /** Audit log checkpoint interval in ms (default 1000; 0 = on demand). */
  readonly checkpointInterval?: number;
  /** How long to wait for the state directory's lock if another process holds it (default ~12 s). */
  readonly lockWaitMs?: number;
  /** Called if opening waits for that lock (a previous process that did not stop cleanly). */
  readonly onLockWait?: () => void;
}

export interface OpenedBroker extends BrokerServer {
  readonly store: SecretStore;
  readonly ledger: Ledger;
  readonly audit: AuditLog;
  readonly auditSigner: ReceiptSigner;
  readonly tokenKey: TokenKey;
}

export function brokerPaths(stateDir: string) {
  return { secrets: path.join(stateDir, 'secrets'), audit: path.join(stateDir, 'audit') };
}

/**
 * One process at a time owns a state directory's audit log (the ledger has no cross-process
 * locking, and opening it repairs a torn tail): see lockStateDirectory. A lock whose owner died
 * is taken over once stale (within ~10 s). `onLost` runs if the lock is lost while held.
 * Resolves to a release function.
 */
export async function lockStateDir(stateDir: string, onLost: (err: Error) => void = () => undefined, waitMs?: number, onWait?: () => void): Promise<() => Promise<void>> {
  const lock = await lockStateDirectory(stateDir, {
    codes: { locked: 'broker.state-locked', io: 'broker.state-io', lockedHint: 'stop the other broker, or give this one its own state directory' },
    onLost,
    ...(waitMs === undefined ? {} : { waitMs }),
    ...(onWait ? { onWait } : {}),
  });
  return () => lock.release();
}

/** Open the audit ledger of a state directory (also used by `attex broker audit`). */
export async function openAuditLedger(stateDir: string, opts: { checkpointInterval?: number; lockWaitMs?: number } = {}): Promise<Ledger> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const seed = await loadOrCreateSeed(stateDir, AUDIT_LOG_KEY_FILE);
  return Ledger.open(brokerPaths(stateDir).audit, {
    signer: { name: AUDIT_LOG_NAME, privateKey: ed25519PrivateKeyFromSeed(seed) },
    // The state directory's lock is held already; this one's own goes stale with it after a crash.
    lock: { waitMs: opts.lockWaitMs ?? LOCK_TAKEOVER_WAIT_MS },
    ...(opts.checkpointInterval === undefined ? {} : { checkpointInterval: opts.checkpointInterval }),
  });
}

export async function openBroker(o: OpenBrokerOptions): Promise<OpenedBroker> {
  // Lost while serving (the process stalled past the lock's staleness, or another took it
  // over): stop answering rather than write the audit log beside another broker.
  let opened: OpenedBroker | undefined;
  let lostWhileOpening: Error | undefined;
  const unlock = await lockStateDir(o.stateDir, (err) => {
    if (!opened) {
      lostWhileOpening = err;
      return;
    }
    o.logger?.error({ code: 'broker.state-lock-lost', err: err.message }, 'state directory lock lost: closing; restart this broker');
    void opened.close().catch(() => undefined);
  }, o.lockWaitMs, () => {
    o.logger?.warn({ stateDir: o.stateDir }, 'waiting for the state directory lock: another process holds it, or one that did not stop cleanly held it last (taken over once stale, within ~10 s)');
    o.onLockWait?.();
  });
  try {
    const broker = await openLocked(o, unlock);
    if (lostWhileOpening) {
      await broker.close().catch(() => undefined);
      throw new AttexError('broker.state-lock-lost', `the state directory lock was lost while the broker opened (another process took ${o.stateDir} over): ${lostWhileOpening.message}`);
    }
    opened = broker;
    return broker;
  } catch (err) {
    await unlock();
    throw err;
  }
}

async function openLocked(o: OpenBrokerOptions, unlock: () => Promise<void>): Promise<OpenedBroker> {
  const store = await openSecretStore(brokerPaths(o.stateDir).secrets, o.operatorKey);
  const tokenKey = await loadOrCreateTokenKey(o.stateDir);
  const auditSigner = await loadOrCreateAuditSigner(o.stateDir);
  const ledger = await openAuditLedger(o.stateDir, { ...(o.checkpointInterval === undefined ? {} : { checkpointInterval: o.checkpointInterval }), ...(o.lockWaitMs === undefined ? {} : { lockWaitMs: o.lockWaitMs }) });
  const audit = createAuditLog(auditSigner, ledger);
  let server: BrokerServer;
  try {
    server = await createBrokerServer({
      verifier: o.verifier,
      resourcePolicy: o.resourcePolicy,
      store,
      tokenKey,
      audit,
      ...(o.clock === undefined ? {} : { clock: o.clock }),
      ...(o.logger === undefined ? {} : { logger: o.logger }),
      ...(o.issuer === undefined ? {} : { issuer: o.issuer }),
      ...(o.sessionTtlSeconds === undefined ? {} : { sessionTtlSeconds: o.sessionTtlSeconds }),
      ...(o.tokenTtlSeconds === undefined ? {} : { tokenTtlSeconds: o.tokenTtlSeconds }),
      ...(o.rateLimit === undefined ? {} : { rateLimit: o.rateLimit }),
      ...(o.tls === undefined ? {} : { tls: o.tls }),
    });
  } catch (err) {
    await ledger.close();
    throw err;
  }
  return {
    ...server,
    store,
    ledger,
    audit,
    auditSigner,
    tokenKey,
    async close() {
      await server.close();
      await ledger.close();
      await unlock();
    },
  };
}
