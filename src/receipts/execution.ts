/**
 * The execution receipt: what ran (component digest), on what (input digest), with what result
 * (output digest), for whom (caller), under which grant and limits, on which attested executor.
 *
 * The builder is pure (no clock, no I/O) and copies only the members it knows into a fresh
 * object, so anything else a caller hands it (a secret value, say) cannot reach the receipt.
 * Secrets appear by name only: no member of the predicate takes a value.
 */
import type { EvidenceKind, TeeName } from '../attestation/types.ts';
import { AttexError } from '../errors/index.ts';
import { encodeBase64 } from './base64.ts';
import { sha256Portable, sslibKeyId } from './ed25519.ts';
import { STATEMENT_TYPE_V1, type Statement } from './statement.ts';
import { type DigestSet, checkCount, checkId, checkNameList, digestSet, hexDigest, rfc3339, sortedUnique } from './fields.ts';

export const EXECUTION_PREDICATE_TYPE = 'https://attex.dev/receipt/execution/v1';

export type AppraisalStatus = 'affirming' | 'warning' | 'contraindicated' | 'none';

export interface RequestSignature {
  readonly keyId: string;
  readonly signatureInput: string;
  readonly signature: string;
  readonly contentDigest: string;
}

export interface KvUse {
  readonly bucket: string;
  readonly op: string;
  readonly count: number;
}

export interface ExecutionPredicate {
  readonly invocationId: string;
  readonly caller: { readonly id: string; readonly requestSignature?: RequestSignature };
  readonly component: { readonly name: string; readonly digest: DigestSet };
  readonly input: { readonly digest: DigestSet; readonly bytes: number; readonly content?: string };
  readonly output: { readonly digest: DigestSet; readonly bytes: number; readonly content?: string };
  readonly outcome: 'ok' | 'error';
  readonly errorCode?: string;
  readonly capabilities: {
    readonly granted: { readonly hosts: readonly string[]; readonly secrets: readonly string[]; readonly kv: readonly string[] };
    readonly used: {
      readonly hosts: readonly string[];
      readonly secrets: readonly string[];
      readonly kv: readonly KvUse[];
      readonly hostCalls: number;
    };
  };
  readonly limits: Readonly<Record<string, number>>;
  readonly policyDigest: DigestSet;
  readonly executor: { readonly id: string; readonly version: string; readonly signingKey: string; readonly keyId: string };
  readonly attestation: {
    readonly evidenceKind: EvidenceKind;
    readonly tee: TeeName;
    readonly evidenceDigest: DigestSet;
    readonly measurement: string;
    readonly appraisalStatus: AppraisalStatus;
    readonly recordLogIndex: number;
  };
  readonly startedAt: string;
  readonly finishedAt: string;
}

export interface ExecutionParams {
  readonly invocationId: string;
  readonly caller: { readonly id: string; readonly requestSignature?: RequestSignature };
  /** digest: lowercase hex SHA-256 (optionally "sha256:"-prefixed) of the component bytes. */
  readonly component: { readonly name: string; readonly digest: string };
  readonly input: Uint8Array;
  readonly output: Uint8Array;
  readonly outcome: 'ok' | 'error';
  readonly errorCode?: string;
  readonly capabilities: {
    readonly granted: { readonly hosts: readonly string[]; readonly secrets: readonly string[]; readonly kv: readonly string[] };
    /** `secrets`: the NAMES of the secrets the action read. There is no place for a value. */
    readonly used: { readonly hosts: readonly string[]; readonly secrets: readonly string[]; readonly kv: readonly KvUse[]; readonly hostCalls: number };
  };
  readonly limits: Readonly<Record<string, number>>;
  /** Hex SHA-256 of the policy (grant + limits) that allowed the call. */
  readonly policyDigest: string;
  readonly executor: { readonly id: string; readonly version: string; readonly signingKey: Uint8Array };
  readonly attestation: {
    readonly evidenceKind: EvidenceKind;
    readonly tee: TeeName;
    readonly evidenceDigest: string;
    readonly measurement: string;
    readonly appraisalStatus: AppraisalStatus;
    readonly recordLogIndex: number;
  };
  readonly startedAt: Date;
  readonly finishedAt: Date;
}

export interface ExecutionOptions {
  /** Put the raw input (base64) into the receipt. Off by default: receipts are public. */
  readonly includeInput?: boolean;
  readonly includeOutput?: boolean;
}

const EVIDENCE_KINDS: readonly string[] = ['snp', 'azure-hcl-snp', 'tdx'];
const TEE_NAMES: readonly string[] = ['snp', 'azure-hcl-snp', 'tdx', 'sim-snp', 'sim-tdx'];
const APPRAISAL: readonly string[] = ['affirming', 'warning', 'contraindicated', 'none'];

/** Build the Statement (subject: the output digest). Throws AttexError `receipt.invalid`. */
export function buildExecutionStatement(params: ExecutionParams, options: ExecutionOptions = {}): Statement<ExecutionPredicate> {
  const p = params;
  const outputDigest = sha256Portable(p.output);
  const inputDigest = sha256Portable(p.input);
  if (p.outcome !== 'ok' && p.outcome !== 'error') throw invalid('outcome must be "ok" or "error"');
  if (p.outcome === 'error' && p.errorCode === undefined) throw invalid('an error outcome needs an errorCode');
  if (p.errorCode !== undefined && !/^[a-z][a-z0-9-]*(\.[a-z0-9-]+)*$/.test(p.errorCode)) throw invalid('errorCode must be a dotted lowercase code');
  if (!(p.executor.signingKey instanceof Uint8Array) || p.executor.signingKey.length !== 32) throw invalid('executor.signingKey must be a raw 32-byte Ed25519 key');
  const a = p.attestation;
  if (!EVIDENCE_KINDS.includes(a.evidenceKind)) throw invalid('attestation.evidenceKind is unknown');
  if (!TEE_NAMES.includes(a.tee)) throw invalid('attestation.tee is unknown');
  if (!APPRAISAL.includes(a.appraisalStatus)) throw invalid('attestation.appraisalStatus is unknown');
  if (!/^([0-9a-f]{2}){1,128}$/.test(a.measurement)) throw invalid('attestation.measurement must be lowercase hex');
  const started = rfc3339(p.startedAt, 'startedAt');
  const finished = rfc3339(p.finishedAt, 'finishedAt');
  if (p.finishedAt.getTime() < p.startedAt.getTime()) throw invalid('finishedAt is before startedAt');

  // Fields are checked in document order, then assembled with keys sorted at every level so
  // encodeStatement's fast path (canonical.ts) applies.
  const invocationId = checkId(p.invocationId, 'invocationId');
  const callerId = checkId(p.caller.id, 'caller.id');
  const rs = p.caller.requestSignature;
  const requestSignature = rs === undefined
    ? undefined
    : {
        keyId: boundedString(rs.keyId, 256, 'requestSignature.keyId'),
        signatureInput: boundedString(rs.signatureInput, 2048, 'requestSignature.signatureInput'),
        signature: boundedString(rs.signature, 1024, 'requestSignature.signature'),
        contentDigest: boundedString(rs.contentDigest, 512, 'requestSignature.contentDigest'),
      };
  const componentName = checkNameList([p.component.name], 'component.name')[0]!;
  const componentDigest = digestSet(hexDigest(p.component.digest, 'component.digest'));
  const granted = p.capabilities.granted;
  const grantedHosts = sortedUnique(checkHosts(granted.hosts, 'granted.hosts'));
  const grantedSecrets = sortedUnique(checkNameList(granted.secrets, 'granted.secrets'));
  const grantedKv = sortedUnique(checkNameList(granted.kv, 'granted.kv'));
  const used = p.capabilities.used;
  const usedHosts = sortedUnique(checkHosts(used.hosts, 'used.hosts'));
  const usedSecrets = sortedUnique(checkNameList(used.secrets, 'used.secrets'));
  const usedKv = used.kv.map((k, i) => {
    const bucket = checkNameList([k.bucket], `used.kv[${i}].bucket`)[0]!;
    const op = checkOp(k.op, i);
    return { bucket, count: checkCount(k.count, `used.kv[${i}].count`), op };
  });
  const hostCalls = checkCount(used.hostCalls, 'used.hostCalls');
  const limits = checkLimits(p.limits);
  const policyDigest = digestSet(hexDigest(p.policyDigest, 'policyDigest'));
  const executorId = checkId(p.executor.id, 'executor.id');
  const executorVersion = boundedString(p.executor.version, 64, 'executor.version');
  const evidenceDigest = digestSet(hexDigest(a.evidenceDigest, 'attestation.evidenceDigest'));
  const recordLogIndex = checkCount(a.recordLogIndex, 'attestation.recordLogIndex');

  const predicate: ExecutionPredicate = {
    attestation: { appraisalStatus: a.appraisalStatus, evidenceDigest, evidenceKind: a.evidenceKind, measurement: a.measurement, recordLogIndex, tee: a.tee },
    caller: requestSignature === undefined
      ? { id: callerId }
      : {
          id: callerId,
          requestSignature: {
            contentDigest: requestSignature.contentDigest,
            keyId: requestSignature.keyId,
            signature: requestSignature.signature,
            signatureInput: requestSignature.signatureInput,
          },
        },
    capabilities: {
      granted: { hosts: grantedHosts, kv: grantedKv, secrets: grantedSecrets },
      used: { hostCalls, hosts: usedHosts, kv: usedKv, secrets: usedSecrets },
    },
    component: { digest: componentDigest, name: componentName },
    ...(p.errorCode === undefined ? {} : { errorCode: p.errorCode }),
    executor: { id: executorId, keyId: cachedKeyId(p.executor.signingKey), signingKey: encodeBase64(p.executor.signingKey), version: executorVersion },
    finishedAt: finished,
    input: {
      bytes: p.input.length,
      ...(options.includeInput === true ? { content: encodeBase64(p.input) } : {}),
      digest: digestSet(hexDigestOf(inputDigest)),
    },
    invocationId,
    limits,
    outcome: p.outcome,
    output: {
      bytes: p.output.length,
      ...(options.includeOutput === true ? { content: encodeBase64(p.output) } : {}),
      digest: digestSet(hexDigestOf(outputDigest)),
    },
    policyDigest,
    startedAt: started,
  };
  return {
    _type: STATEMENT_TYPE_V1,
    predicate,
    predicateType: EXECUTION_PREDICATE_TYPE,
    subject: [{ digest: { sha256: hexDigestOf(outputDigest) }, name: 'output' }],
  };
}

// An executor signs every receipt with one key: derive its keyid once, not per receipt.
const keyIds = new Map<string, string>();

function cachedKeyId(publicKey: Uint8Array): string {
  const hex = hexDigestOf(publicKey);
  let id = keyIds.get(hex);
  if (id === undefined) {
    id = sslibKeyId(publicKey);
    if (keyIds.size >= 64) keyIds.clear();
    keyIds.set(hex, id);
  }
  return id;
}

function invalid(message: string): AttexError {
  return new AttexError('receipt.invalid', message);
}

function hexDigestOf(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

function boundedString(v: unknown, max: number, what: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw invalid(`${what} must be a string of 1..${max} characters`);
  return v;
}

function checkHosts(hosts: readonly string[], what: string): string[] {
  if (!Array.isArray(hosts) || hosts.length > 256) throw invalid(`${what} must be a list of at most 256 hosts`);
  return hosts.map((h, i) => {
    if (typeof h !== 'string' || !/^[A-Za-z0-9*][A-Za-z0-9.*:[\]-]{0,252}$/.test(h)) throw invalid(`${what}[${i}] is not a host name`);
    return h;
  });
}

function checkOp(op: unknown, i: number): string {
  if (typeof op !== 'string' || !/^[a-z][a-z-]{0,31}$/.test(op)) throw invalid(`used.kv[${i}].op is not an operation name`);
  return op;
}

function checkLimits(limits: Readonly<Record<string, number>>): Record<string, number> {
  const entries = Object.entries(limits).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)); // sorted keys: see above
  if (entries.length > 32) throw invalid('at most 32 limits');
  const out: Record<string, number> = {};
  for (const [name, value] of entries) {
    if (!/^[a-z][A-Za-z0-9]{0,63}$/.test(name)) throw invalid(`limit name ${JSON.stringify(name.slice(0, 64))} is not camelCase`);
    out[name] = checkCount(value, `limits.${name}`);
  }
  return out;
}
