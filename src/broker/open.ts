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
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { AttexError } from '../errors/index.ts';
import path from 'node:path';
import type { Logger } from 'pino';
import { Ledger } from '../ledger/index.ts';
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

const LOCK_FILE = 'broker.lock';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One process at a time owns a state directory's audit log (the ledger has no cross-process
 * locking, and opening it repairs a torn tail). A lock file holds the owner's pid; a lock left
 * by a dead process is taken over. Resolves to a release function.
 */
export async function lockStateDir(stateDir: string): Promise<() => Promise<void>> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const file = path.join(stateDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(file, 'wx', 0o600);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return async () => {
        await rm(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new AttexError('broker.state-io', `cannot create ${LOCK_FILE}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
      const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) {
        throw new AttexError('broker.state-locked', `the broker state directory is in use by process ${pid}`);
      }
      await rm(file, { force: true });
    }
  }
  throw new AttexError('broker.state-locked', 'the broker state directory lock could not be taken');
}

/** Open the audit ledger of a state directory (also used by `attex broker audit`). */
export async function openAuditLedger(stateDir: string, opts: { checkpointInterval?: number } = {}): Promise<Ledger> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const seed = await loadOrCreateSeed(stateDir, AUDIT_LOG_KEY_FILE);
  return Ledger.open(brokerPaths(stateDir).audit, {
    signer: { name: AUDIT_LOG_NAME, privateKey: ed25519PrivateKeyFromSeed(seed) },
    ...(opts.checkpointInterval === undefined ? {} : { checkpointInterval: opts.checkpointInterval }),
  });
}

export async function openBroker(o: OpenBrokerOptions): Promise<OpenedBroker> {
  const unlock = await lockStateDir(o.stateDir);
  try {
    return await openLocked(o, unlock);
  } catch (err) {
    await unlock();
    throw err;
  }
}

async function openLocked(o: OpenBrokerOptions, unlock: () => Promise<void>): Promise<OpenedBroker> {
  const store = await openSecretStore(brokerPaths(o.stateDir).secrets, o.operatorKey);
  const tokenKey = await loadOrCreateTokenKey(o.stateDir);
  const auditSigner = await loadOrCreateAuditSigner(o.stateDir);
  const ledger = await openAuditLedger(o.stateDir, o.checkpointInterval === undefined ? {} : { checkpointInterval: o.checkpointInterval });
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
