/**
 * A real world for verifier tests: a simulated TEE, a ledger on disk, an executor key whose
 * attestation record is the log's first entry, and receipts appended after it.
 */
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { reportDataFor } from '../../src/attestation/binding/index.ts';
import type { EvidencePackage } from '../../src/attestation/evidence/package.ts';
import { type SimulatedTee, openSimulatedTee } from '../../src/attestation/sim/index.ts';
import { Ledger } from '../../src/ledger/store.ts';
import {
  type ExecutionParams,
  type ReceiptSigner,
  buildAttestationRecordStatement,
  buildExecutionStatement,
  createReceiptSigner,
  executorRuntimeData,
  signStatement,
} from '../../src/receipts/index.ts';
import { encodeBundle, type VerifyTrust } from '../../src/verify/index.ts';
import { sampleExecutionParams } from '../receipts/helpers.ts';

export const LOG_NAME = 'log.test.example/attex';

export interface World {
  readonly dir: string;
  readonly tee: SimulatedTee;
  readonly ledger: Ledger;
  readonly signer: ReceiptSigner;
  readonly teeJwk: Record<string, string>;
  readonly record: { envelope: Uint8Array; index: number; evidenceDigest: string };
  /** Trust with the simulated roots allowed. */
  readonly trust: VerifyTrust;
  close(): Promise<void>;
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

export function teePublicJwk(): Record<string, string> {
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  return { kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, y: jwk.y! };
}

/** Evidence + signed attestation record for `signer`; `bindKey` lets a test bind another key. */
export async function attestationRecord(
  tee: SimulatedTee,
  signer: ReceiptSigner,
  teeJwk: Record<string, string>,
  bindKey: Uint8Array = signer.publicKeyRaw,
  alterEvidence: (e: EvidencePackage) => EvidencePackage = (e) => e,
) {
  const nonce = 'broker-nonce-0001';
  const evidence = alterEvidence(await tee.snpEvidence(reportDataFor(executorRuntimeData(nonce, teeJwk, bindKey) as unknown as Record<string, unknown>)));
  const statement = buildAttestationRecordStatement({
    executor: { id: 'executor-a', version: '0.1.0' },
    receiptKey: signer.publicKeyRaw,
    teePublicKey: teeJwk,
    nonce,
    evidence,
    createdAt: new Date(),
  });
  return { envelope: signStatement(statement, signer), evidenceDigest: statement.subject[0]!.digest.sha256! };
}

export async function openWorld(dir: string): Promise<World> {
  const tee = await openSimulatedTee(path.join(dir, 'sim'));
  const ledger = await Ledger.open(path.join(dir, 'log'), {
    signer: { name: LOG_NAME, privateKey: generateKeyPairSync('ed25519').privateKey },
    checkpointInterval: 0,
  });
  const signer = createReceiptSigner();
  const teeJwk = teePublicJwk();
  const rec = await attestationRecord(tee, signer, teeJwk);
  const { index } = await ledger.append(rec.envelope);
  return {
    dir,
    tee,
    ledger,
    signer,
    teeJwk,
    record: { envelope: rec.envelope, index, evidenceDigest: rec.evidenceDigest },
    trust: {
      logVerifierKey: ledger.verifierKey,
      evidence: { amd: tee.amdRoots, intel: tee.intelRoots, allowSimulated: true },
      allowSimulated: true,
    },
    close: () => ledger.close(),
  };
}

let invocations = 0;

/** Execution params consistent with the world's attestation record (a fresh invocationId each time). */
export function receiptParams(w: World, overrides: Partial<ExecutionParams> = {}, key: Uint8Array = w.signer.publicKeyRaw): ExecutionParams {
  return sampleExecutionParams(key, {
    invocationId: `inv-${String(++invocations).padStart(4, '0')}`,
    // After the attestation record was created, as for any executor.
    startedAt: new Date(Date.now() + 1000),
    finishedAt: new Date(Date.now() + 1250),
    attestation: {
      evidenceKind: 'snp',
      tee: 'sim-snp',
      evidenceDigest: w.record.evidenceDigest,
      measurement: hex(w.tee.measurement),
      appraisalStatus: 'affirming',
      recordLogIndex: w.record.index,
    },
    ...overrides,
  });
}

/** Append a receipt envelope and return its bundle text. */
export async function bundleFor(w: World, envelope: Uint8Array, record = w.record): Promise<{ text: string; index: number; proof: string }> {
  const { index } = await w.ledger.append(envelope);
  const proof = await w.ledger.tlogProof(index);
  const recordProof = await w.ledger.tlogProof(record.index);
  return { text: encodeBundle({ receipt: envelope, proof, attestation: { record: record.envelope, proof: recordProof } }), index, proof };
}

export async function issueReceipt(w: World, overrides: Partial<ExecutionParams> = {}): Promise<{ text: string; index: number; envelope: Uint8Array; proof: string }> {
  const envelope = signStatement(buildExecutionStatement(receiptParams(w, overrides)), w.signer);
  return { ...(await bundleFor(w, envelope)), envelope };
}
