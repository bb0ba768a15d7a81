/**
 * The attestation record: the executor's first log entry. It publishes the receipt key, the
 * TEE key and the hardware evidence whose report data binds both (report_data =
 * SHA-384(canonical JSON of `runtimeData`), zero-padded), so a verifier can tie every receipt
 * signed by that key to the evidence, offline. Pure: the caller supplies `createdAt`.
 */
import type { EvidenceKind, TeeName } from '../attestation/types.ts';
import { AttexError } from '../errors/index.ts';
import { decodeBase64Canonical, encodeBase64 } from './base64.ts';
import { sha256Portable } from './ed25519.ts';
import { checkId, rfc3339 } from './fields.ts';
import { STATEMENT_TYPE_V1, type Statement } from './statement.ts';

export const ATTESTATION_RECORD_PREDICATE_TYPE = 'https://attex.dev/receipt/attestation-record/v1';
/** Runtime-data member that carries the receipt key (base64 of the raw Ed25519 key). */
export const RECEIPT_KEY_MEMBER = 'attex-receipt-key';

/** A public JWK (string members only; private members are refused). */
export type PublicJwk = Readonly<Record<string, string>>;

/** Same shape as the attestation module's EvidencePackage (JSON form of one piece of evidence). */
export interface EvidencePackageJson {
  readonly kind: EvidenceKind;
  readonly evidence: string;
  readonly certs?: readonly string[];
  readonly collateral?: Readonly<Partial<Record<
    'tcbInfo' | 'tcbInfoIssuerChain' | 'qeIdentity' | 'qeIdentityIssuerChain' | 'pckCrl' | 'pckCrlIssuerChain' | 'rootCaCrl',
    string
  >>>;
}

export interface ExecutorRuntimeData {
  readonly nonce: string;
  readonly 'tee-pubkey': PublicJwk;
  readonly 'attex-receipt-key': string;
}

export interface AppraisalSummary {
  readonly status: 'affirming' | 'warning' | 'contraindicated';
  readonly tee: TeeName;
  readonly policyId: string;
  readonly policyDigest: string;
}

export interface AttestationRecordPredicate {
  readonly executor: { readonly id: string; readonly version: string };
  readonly keys: { readonly receiptKey: string; readonly teePublicKey: PublicJwk };
  readonly runtimeData: ExecutorRuntimeData;
  readonly evidence: EvidencePackageJson;
  readonly appraisal?: AppraisalSummary;
  readonly brokerToken?: string;
  readonly createdAt: string;
}

export interface AttestationRecordParams {
  readonly executor: { readonly id: string; readonly version: string };
  readonly receiptKey: Uint8Array;
  readonly teePublicKey: PublicJwk;
  /** The broker's nonce that went into the runtime data. */
  readonly nonce: string;
  readonly evidence: EvidencePackageJson;
  readonly appraisal?: AppraisalSummary;
  /** The broker's EAR JWT, if the executor wants it on record. */
  readonly brokerToken?: string;
  readonly createdAt: Date;
}

const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'];

/**
 * The runtime data an executor hashes into report_data. Use this same function when collecting
 * evidence, so the record and the evidence agree byte for byte.
 */
export function executorRuntimeData(nonce: string, teePublicKey: PublicJwk, receiptKey: Uint8Array): ExecutorRuntimeData {
  if (typeof nonce !== 'string' || nonce.length === 0 || nonce.length > 512) throw invalid('nonce must be 1..512 characters');
  if (!(receiptKey instanceof Uint8Array) || receiptKey.length !== 32) throw invalid('receipt key must be a raw 32-byte Ed25519 key');
  return { nonce, 'tee-pubkey': publicJwk(teePublicKey), [RECEIPT_KEY_MEMBER]: encodeBase64(receiptKey) };
}

/** Build the record Statement (subject: SHA-256 of the raw evidence bytes). */
export function buildAttestationRecordStatement(params: AttestationRecordParams): Statement<AttestationRecordPredicate> {
  const p = params;
  const runtimeData = executorRuntimeData(p.nonce, p.teePublicKey, p.receiptKey);
  const evidence = evidencePackage(p.evidence);
  const evidenceBytes = decodeBase64Canonical(evidence.evidence)!;
  const version = p.executor.version;
  if (typeof version !== 'string' || version.length === 0 || version.length > 64) throw invalid('executor.version must be 1..64 characters');
  if (p.brokerToken !== undefined && !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(p.brokerToken)) {
    throw invalid('brokerToken must be a compact JWT');
  }
  const predicate: AttestationRecordPredicate = {
    executor: { id: checkId(p.executor.id, 'executor.id'), version },
    keys: { receiptKey: runtimeData[RECEIPT_KEY_MEMBER], teePublicKey: runtimeData['tee-pubkey'] },
    runtimeData,
    evidence,
    ...(p.appraisal === undefined ? {} : { appraisal: appraisalSummary(p.appraisal) }),
    ...(p.brokerToken === undefined ? {} : { brokerToken: p.brokerToken }),
    createdAt: rfc3339(p.createdAt, 'createdAt'),
  };
  let hex = '';
  for (const b of sha256Portable(evidenceBytes)) hex += b.toString(16).padStart(2, '0');
  return {
    _type: STATEMENT_TYPE_V1,
    subject: [{ name: 'evidence', digest: { sha256: hex } }],
    predicateType: ATTESTATION_RECORD_PREDICATE_TYPE,
    predicate,
  };
}

function invalid(message: string): AttexError {
  return new AttexError('receipt.invalid', message);
}

function publicJwk(jwk: PublicJwk): PublicJwk {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw invalid('TEE public key must be a JWK object');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(jwk)) {
    if (PRIVATE_JWK_MEMBERS.includes(k)) throw invalid(`TEE public key JWK has private member "${k}"`);
    if (typeof v !== 'string') continue; // key_ops/ext and the like carry no key material
    out[k] = v;
  }
  if (typeof out.kty !== 'string' || out.kty.length === 0) throw invalid('TEE public key JWK has no kty');
  return out;
}

function evidencePackage(pkg: EvidencePackageJson): EvidencePackageJson {
  if (!['snp', 'azure-hcl-snp', 'tdx'].includes(pkg.kind)) throw invalid('evidence.kind is unknown');
  if (typeof pkg.evidence !== 'string' || decodeBase64Canonical(pkg.evidence) === null || pkg.evidence.length === 0) {
    throw invalid('evidence.evidence must be canonical base64');
  }
  const certs = pkg.certs?.map((c, i) => {
    if (typeof c !== 'string' || decodeBase64Canonical(c) === null) throw invalid(`evidence.certs[${i}] must be canonical base64`);
    return c;
  });
  let collateral: Record<string, string> | undefined;
  if (pkg.collateral !== undefined) {
    collateral = {};
    for (const [k, v] of Object.entries(pkg.collateral)) {
      if (!['tcbInfo', 'tcbInfoIssuerChain', 'qeIdentity', 'qeIdentityIssuerChain', 'pckCrl', 'pckCrlIssuerChain', 'rootCaCrl'].includes(k)) {
        throw invalid(`evidence.collateral.${k} is unknown`);
      }
      if (v === undefined) continue;
      if (typeof v !== 'string') throw invalid(`evidence.collateral.${k} must be a string`);
      collateral[k] = v;
    }
  }
  return {
    kind: pkg.kind,
    evidence: pkg.evidence,
    ...(certs === undefined ? {} : { certs }),
    ...(collateral === undefined ? {} : { collateral }),
  };
}

function appraisalSummary(a: AppraisalSummary): AppraisalSummary {
  if (!['affirming', 'warning', 'contraindicated'].includes(a.status)) throw invalid('appraisal.status is unknown');
  if (!['snp', 'azure-hcl-snp', 'tdx', 'sim-snp', 'sim-tdx'].includes(a.tee)) throw invalid('appraisal.tee is unknown');
  if (typeof a.policyId !== 'string' || a.policyId.length === 0 || a.policyId.length > 256) throw invalid('appraisal.policyId must be 1..256 characters');
  if (typeof a.policyDigest !== 'string' || a.policyDigest.length === 0 || a.policyDigest.length > 256) throw invalid('appraisal.policyDigest must be 1..256 characters');
  return { status: a.status, tee: a.tee, policyId: a.policyId, policyDigest: a.policyDigest };
}
