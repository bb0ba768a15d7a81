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
import { mkdir, readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import { AttexError } from '../errors/index.ts';
import { Ledger } from '../ledger/index.ts';
import { ed25519PrivateKeyFromSeed, type ReceiptSigner } from '../receipts/index.ts';
import { createAuditLog, loadOrCreateAuditSigner, type AuditLog } from './audit.ts';
import type { ResourcePolicy } from './policy/index.ts';
import { createBrokerServer, type BrokerServer } from './server.ts';
import { openSecretStore, writeFileAtomic, type SecretStore } from './store/index.ts';
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

async function loadOrCreateSeed(dir: string, file: string): Promise<Uint8Array> {
  const full = path.join(dir, file);
  let hex: string;
  try {
    hex = (await readFile(full, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new AttexError('broker.audit-key', `${file} is unreadable`);
    hex = randomBytes(32).toString('hex');
    await writeFileAtomic(dir, full, `${hex}\n`);
  }
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new AttexError('broker.audit-key', `${file} must hold a 32-byte hex seed`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
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
  await mkdir(o.stateDir, { recursive: true, mode: 0o700 });
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
    },
  };
}
