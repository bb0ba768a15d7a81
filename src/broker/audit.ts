/**
 * The broker's audit log: every token issued, every release and every denial becomes a DSSE
 * envelope (Ed25519, the broker's own audit key) appended to a transparency log, the same
 * signed, verifiable format as execution receipts. Entries hold decisions, reason codes,
 * digests, appraisal summaries and resource paths: never secret values, plaintexts, session ids
 * or tokens. The broker writes the entry before it answers, and refuses to release a resource
 * whose release it could not record.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { AttexError } from '../errors/index.ts';
import { createReceiptSigner, ed25519PrivateKeyFromSeed, signDsse, type ReceiptSigner } from '../receipts/index.ts';
import { writeFileAtomic } from './store/index.ts';

export const AUDIT_PAYLOAD_TYPE = 'application/vnd.attex.broker-audit+json';
export const AUDIT_ENTRY_TYPE = 'urn:attex:broker-audit:v1';
export const AUDIT_KEY_FILE = 'audit-signing-key.seed';

export interface AuditAppraisal {
  readonly status: string;
  readonly tee: string;
  readonly policyId: string;
  readonly policyDigest: string;
  readonly trustworthinessVector: Readonly<Record<string, number>>;
}

/** One decision. `reason` is `ok` for a granted request, else the problem's attex code. */
export interface AuditEvent {
  readonly event: 'auth' | 'attest' | 'resource';
  readonly decision: 'token-issued' | 'release' | 'deny';
  readonly reason: string;
  readonly reasons?: readonly string[];
  readonly status: number;
  readonly problemType?: string;
  readonly resource?: string;
  readonly kbsTee?: string;
  /** sha256 hex of the kbs-session-id (the id itself is a bearer credential). */
  readonly session?: string;
  readonly tokenId?: string;
  readonly evidenceDigest?: string;
  readonly measurement?: string | null;
  readonly simulated?: boolean;
  readonly appraisal?: AuditAppraisal;
  readonly resourcePolicy?: { readonly id: string; readonly digest: string; readonly rule: number | null };
}

export interface AuditEntry extends AuditEvent {
  readonly _type: typeof AUDIT_ENTRY_TYPE;
  readonly time: string;
}

/** The append side of src/ledger's `Ledger` (resolves once the entry is durable). */
export interface AuditLedger {
  append(entry: Uint8Array, opts?: { key?: string }): Promise<{ index: number }>;
}

export interface AuditLog {
  readonly publicKeyRaw: Uint8Array;
  readonly keyId: string;
  record(event: AuditEvent, now: Date): Promise<{ index: number }>;
}

export function createAuditLog(signer: ReceiptSigner, ledger: AuditLedger): AuditLog {
  return {
    publicKeyRaw: signer.publicKeyRaw,
    keyId: signer.keyId,
    async record(event, now) {
      const entry: AuditEntry = { _type: AUDIT_ENTRY_TYPE, time: now.toISOString(), ...event };
      const envelope = signDsse(AUDIT_PAYLOAD_TYPE, new TextEncoder().encode(JSON.stringify(entry)), signer);
      try {
        return await ledger.append(envelope);
      } catch (err) {
        throw new AttexError('broker.audit', 'the audit log did not accept the entry', { cause: err });
      }
    },
  };
}

/** A 32-byte Ed25519 seed kept as hex in `dir/file` (0600), created on first use. */
export async function loadOrCreateSeed(dir: string, file: string): Promise<Uint8Array> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
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

/** The broker's Ed25519 audit key (signs the DSSE envelopes), from its state directory. */
export async function loadOrCreateAuditSigner(stateDir: string): Promise<ReceiptSigner> {
  return createReceiptSigner(ed25519PrivateKeyFromSeed(await loadOrCreateSeed(stateDir, AUDIT_KEY_FILE)));
}
