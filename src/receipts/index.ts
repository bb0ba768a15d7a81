/**
 * Receipts: DSSE envelopes (Ed25519) around in-toto Statement v1 payloads, the execution
 * receipt and the executor's attestation record. Format and codes: docs/receipt.md.
 */
export { IN_TOTO_PAYLOAD_TYPE, MAX_ENVELOPE_BYTES, pae, parseDsse, signDsse, verifyDsse } from './dsse.ts';
export type { DsseEnvelope, DsseSignature, ReceiptSigner, VerifiedDsse } from './dsse.ts';
export { createReceiptSigner, ed25519PrivateKeyFromSeed, rawEd25519PublicKey } from './signer.ts';
import './ed25519-node.ts'; // Node entry: libsodium verification (strict, same verdicts as noble)
export { sslibKeyId, sslibKeyJson, useEd25519Verifier, verifyEd25519, verifyEd25519Portable } from './ed25519.ts';
export { verifyEd25519Node } from './ed25519-node.ts';
export { decodeBase64, decodeBase64Canonical, encodeBase64 } from './base64.ts';
export { STATEMENT_TYPE_V1, encodeStatement, parseStatement } from './statement.ts';
export type { ResourceDescriptor, Statement } from './statement.ts';
export { EXECUTION_PREDICATE_TYPE, buildExecutionStatement } from './execution.ts';
export type { AppraisalStatus, ExecutionOptions, ExecutionParams, ExecutionPredicate, KvUse, RequestSignature } from './execution.ts';
export {
  ATTESTATION_RECORD_PREDICATE_TYPE,
  RECEIPT_KEY_MEMBER,
  buildAttestationRecordStatement,
  executorRuntimeData,
} from './attestation-record.ts';
export type {
  AppraisalSummary,
  AttestationRecordParams,
  AttestationRecordPredicate,
  EvidencePackageJson,
  ExecutorRuntimeData,
  PublicJwk,
} from './attestation-record.ts';
export { asAttestationRecordStatement, asExecutionStatement, validatePredicate } from './predicate.ts';
export type { DigestSet } from './fields.ts';

import type { ReceiptSigner } from './dsse.ts';
import { IN_TOTO_PAYLOAD_TYPE, signDsse } from './dsse.ts';
import { type Statement, encodeStatement } from './statement.ts';

/** Sign a Statement as a DSSE envelope (exact bytes, ready to append to the log). */
export function signStatement(statement: Statement, signer: ReceiptSigner): Uint8Array {
  return signDsse(IN_TOTO_PAYLOAD_TYPE, encodeStatement(statement), signer);
}
