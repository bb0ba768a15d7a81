/**
 * The offline receipt verifier. Given a bundle and a trust file it checks, in order and
 * without network: (1) the checkpoint's signatures and witness policy, (2) inclusion of the
 * exact receipt envelope bytes, (3) the receipt's DSSE signature, Statement and predicate
 * schema, (4) the executor's attestation record (its own inclusion, its signature by the same
 * key, the key bound into the evidence's report data, its log index), (5) the evidence against
 * vendor roots (simulated roots only when allowed) at the record's time, and the appraisal
 * policy when given. The first failing step stops the run; later steps are reported not run.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { type AppraisalPolicy, appraise, loadPolicy } from '../attestation/appraisal/index.ts';
import { type TrustStore, type VerificationResult, boundReportData, reportDataFor, verifyEvidence } from '../attestation/index.ts';
import { AttexError, type Reason } from '../errors/index.ts';
import { type Checkpoint, leafHash, openCheckpoint, parseTlogProof, verifyInclusion } from '../ledger/index.ts';
import { decodeBase64Canonical } from '../receipts/base64.ts';
import { parseDsse, verifyDsse } from '../receipts/dsse.ts';
import { sha256Portable, sslibKeyId } from '../receipts/ed25519.ts';
import type { AttestationRecordPredicate } from '../receipts/attestation-record.ts';
import type { ExecutionPredicate } from '../receipts/execution.ts';
import { asAttestationRecordStatement, asExecutionStatement } from '../receipts/predicate.ts';
import { type Statement, encodeStatement, parseStatement } from '../receipts/statement.ts';
import { type ReceiptBundle, parseBundle } from './bundle.ts';
import { fromTheFuture, receiptContradiction, recordContradiction, strictInstant } from './consistency.ts';

export type StepName = 'bundle' | 'checkpoint' | 'inclusion' | 'receipt' | 'attestation-record' | 'evidence';
export const STEPS: readonly StepName[] = ['bundle', 'checkpoint', 'inclusion', 'receipt', 'attestation-record', 'evidence'];

export interface StepResult {
  readonly step: StepName;
  readonly ok: boolean;
  /** Set when the step failed (`verify.*`) or did not run (`verify.not-run`). */
  readonly code?: string;
  readonly message: string;
}

export interface VerifyTrust {
  /** The log's signed-note verifier key (C2SP vkey); its name is the expected origin. */
  readonly logVerifierKey: string;
  /** Expected checkpoint origin when it differs from the key name. */
  readonly origin?: string;
  readonly witnessVerifierKeys?: readonly string[];
  readonly requireWitness?: boolean;
  /** Optional pin: raw Ed25519 executor keys accepted (in addition to the attestation binding). */
  readonly executorKeys?: readonly Uint8Array[];
  /** Vendor (and, with allowSimulated, simulated) roots for the evidence. */
  readonly evidence: TrustStore;
  /** An appraisal policy (from `loadPolicy`) the evidence must satisfy. */
  readonly appraisalPolicy?: AppraisalPolicy;
  readonly allowSimulated?: boolean;
}

export interface BundleVerification {
  readonly verified: boolean;
  readonly steps: readonly StepResult[];
  /** The decoded predicate, once its signature and schema checked out (even if a later step failed). */
  readonly receipt?: ExecutionPredicate;
  readonly log?: { readonly origin: string; readonly index: number; readonly treeSize: number; readonly recordIndex?: number };
  readonly evidence?: { readonly tee: string; readonly simulated: boolean; readonly outcome: string; readonly appraisal?: string };
}

export interface VerifyOptions {
  /** The verifier's clock: signed times later than it (beyond 5 minutes of skew) are refused. */
  readonly now?: Date;
}

/**
 * What every bundle's evidence must satisfy when the trust file names no appraisal policy:
 * no debuggable guest (its host can read the receipt key out of memory) and SNP reports from
 * VMPL 0. Fleet-specific requirements (measurements, TCB levels) need a policy of one's own.
 */
export function baselinePolicy(allowSimulated: boolean): AppraisalPolicy {
  return loadPolicy({
    version: 1,
    id: 'attex-verify-baseline',
    evidenceKinds: ['snp', 'azure-hcl-snp', 'tdx'],
    allowSimulated,
    allowDebug: false,
    snp: { allowedVmpls: [0] },
  });
}

class StepFailure extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

const fail = (code: string, message: string): never => {
  throw new StepFailure(code, message);
};

/** Re-throw an AttexError from a dependency as a step failure with our code, keeping its own. */
function rethrow(code: string, what: string, err: unknown): never {
  if (err instanceof StepFailure) throw err;
  if (err instanceof AttexError) throw new StepFailure(code, `${what}: ${err.message} [${err.code}]`);
  throw new StepFailure(code, `${what}: ${err instanceof Error ? err.message : String(err)}`);
}

interface Context {
  bundle?: ReceiptBundle;
  checkpoint?: Checkpoint;
  index?: number;
  inclusionPath?: readonly Uint8Array[];
  executorKey?: Uint8Array;
  receipt?: Statement<ExecutionPredicate>;
  record?: Statement<AttestationRecordPredicate>;
  recordIndex?: number;
  evidenceResult?: VerificationResult;
  appraisal?: string;
}

export async function verifyBundle(bundle: unknown, trust: VerifyTrust, options: VerifyOptions = {}): Promise<BundleVerification> {
  const ctx: Context = {};
  const steps: StepResult[] = [];
  const run: Record<StepName, () => Promise<string> | string> = {
    bundle: () => stepBundle(ctx, bundle),
    checkpoint: () => stepCheckpoint(ctx, trust),
    inclusion: () => stepInclusion(ctx),
    receipt: () => stepReceipt(ctx, trust, options),
    'attestation-record': () => stepRecord(ctx, trust, options),
    evidence: () => stepEvidence(ctx, trust),
  };
  let failed = false;
  for (const step of STEPS) {
    if (failed) {
      steps.push({ step, ok: false, code: 'verify.not-run', message: 'not run: an earlier step failed' });
      continue;
    }
    try {
      steps.push({ step, ok: true, message: await run[step]() });
    } catch (err) {
      failed = true;
      const f = err instanceof StepFailure ? err : new StepFailure('verify.internal', `unexpected error: ${err instanceof Error ? err.message : String(err)}`);
      steps.push({ step, ok: false, code: f.code, message: f.message });
    }
  }
  return {
    verified: !failed,
    steps,
    ...(ctx.receipt ? { receipt: ctx.receipt.predicate } : {}),
    ...(ctx.checkpoint && ctx.index !== undefined
      ? { log: { origin: ctx.checkpoint.origin, index: ctx.index, treeSize: ctx.checkpoint.size, ...(ctx.recordIndex !== undefined ? { recordIndex: ctx.recordIndex } : {}) } }
      : {}),
    ...(ctx.evidenceResult
      ? { evidence: { tee: ctx.evidenceResult.tee, simulated: ctx.evidenceResult.simulated, outcome: ctx.evidenceResult.outcome, ...(ctx.appraisal ? { appraisal: ctx.appraisal } : {}) } }
      : {}),
  };
}

function stepBundle(ctx: Context, input: unknown): string {
  try {
    ctx.bundle = parseBundle(input);
  } catch (err) {
    rethrow('verify.bundle-malformed', 'bundle', err);
  }
  return `bundle parsed (receipt ${ctx.bundle!.receipt.length} bytes, attestation record ${ctx.bundle!.attestation.record.length} bytes)`;
}

function checkpointTrust(trust: VerifyTrust) {
  return {
    logVerifierKey: trust.logVerifierKey,
    ...(trust.witnessVerifierKeys ? { witnessVerifierKeys: trust.witnessVerifierKeys } : {}),
    ...(trust.requireWitness ? { requireWitness: true } : {}),
    ...(trust.origin !== undefined ? { origin: trust.origin } : {}),
  };
}

/** (1) and the record's share of (4): parse a tlog-proof and open its checkpoint. */
function openProof(text: string, trust: VerifyTrust, code: string, what: string) {
  try {
    const parsed = parseTlogProof(text);
    const opened = openCheckpoint(parsed.checkpoint, checkpointTrust(trust));
    return { parsed, opened };
  } catch (err) {
    return rethrow(code, what, err);
  }
}

function stepCheckpoint(ctx: Context, trust: VerifyTrust): string {
  const { parsed, opened } = openProof(ctx.bundle!.proof, trust, 'verify.checkpoint', 'receipt checkpoint');
  ctx.checkpoint = opened.checkpoint;
  ctx.index = parsed.index;
  ctx.inclusionPath = parsed.proof;
  const w = opened.witnesses.length;
  return `checkpoint of ${opened.checkpoint.origin} at size ${opened.checkpoint.size} signed by the log key${w > 0 ? ` and ${w} witness(es)` : ''}`;
}

function proveInclusion(entry: Uint8Array, index: number, path: readonly Uint8Array[], cp: Checkpoint, code: string, what: string): void {
  if (index >= cp.size) fail(code, `${what}: index ${index} is not below the checkpoint size ${cp.size}`);
  try {
    verifyInclusion(leafHash(entry), index, cp.size, path, cp.rootHash);
  } catch (err) {
    rethrow(code, `${what}: the exact envelope bytes are not proven at index ${index} of the size-${cp.size} tree`, err);
  }
}

function stepInclusion(ctx: Context): string {
  proveInclusion(ctx.bundle!.receipt, ctx.index!, ctx.inclusionPath!, ctx.checkpoint!, 'verify.inclusion', 'receipt');
  return `receipt envelope is entry ${ctx.index} of the size-${ctx.checkpoint!.size} tree`;
}

function stepReceipt(ctx: Context, trust: VerifyTrust, options: VerifyOptions): string {
  // The signing key named in the (not yet verified) payload is a candidate only: the signature
  // must verify under it, and step 4 requires the same key to be bound into hardware evidence.
  let candidate: Uint8Array | null = null;
  try {
    const env = parseDsse(ctx.bundle!.receipt);
    const json = JSON.parse(new TextDecoder().decode(env.payload)) as { predicate?: { executor?: { signingKey?: unknown } } };
    const key = json.predicate?.executor?.signingKey;
    candidate = typeof key === 'string' ? decodeBase64Canonical(key) : null;
  } catch (err) {
    if (err instanceof AttexError) rethrow('verify.receipt-signature', 'receipt envelope', err);
    fail('verify.receipt-statement', 'receipt payload is not JSON');
  }
  if (candidate === null || candidate.length !== 32) fail('verify.receipt-statement', 'receipt names no raw Ed25519 executor.signingKey');
  const key = candidate!;
  if (trust.executorKeys && !trust.executorKeys.some((k) => equalBytes(k, key))) {
    fail('verify.executor-key', 'the receipt signing key is not one of the trust file\'s executorKeys');
  }
  let verified;
  try {
    verified = verifyDsse(ctx.bundle!.receipt, key);
  } catch (err) {
    return rethrow('verify.receipt-signature', 'receipt DSSE signature', err);
  }
  try {
    ctx.receipt = asExecutionStatement(parseStatement(verified.payloadType, verified.payload));
  } catch (err) {
    const code = err instanceof AttexError && err.code === 'receipt.predicate' ? 'verify.receipt-schema' : 'verify.receipt-statement';
    rethrow(code, 'receipt', err);
  }
  const p = ctx.receipt!.predicate;
  // One byte form per statement (docs/receipt.md): anything else was not written by an executor.
  if (!equalBytes(encodeStatement(ctx.receipt!), verified.payload)) fail('verify.receipt-statement', 'the receipt payload is not the canonical JSON of its statement');
  if (p.executor.keyId !== sslibKeyId(key)) fail('verify.receipt-statement', 'executor.keyId is not the securesystemslib keyid of executor.signingKey');
  if (ctx.receipt!.subject[0]?.digest.sha256 !== p.output.digest.sha256) fail('verify.receipt-statement', 'the Statement subject is not the output digest');
  const contradiction = receiptContradiction(p, ctx.receipt!.subject);
  if (contradiction !== undefined) fail('verify.receipt-statement', contradiction);
  const future = options.now === undefined ? undefined : fromTheFuture({ startedAt: p.startedAt, finishedAt: p.finishedAt }, options.now);
  if (future !== undefined) fail('verify.receipt-time', future);
  ctx.executorKey = key;
  return `DSSE signature by executor key ${p.executor.keyId.slice(0, 16)}…; in-toto Statement v1 with a valid ${ctx.receipt!.predicateType} predicate`;
}

async function stepRecord(ctx: Context, trust: VerifyTrust, options: VerifyOptions): Promise<string> {
  const b = ctx.bundle!;
  const { parsed, opened } = openProof(b.attestation.proof, trust, 'verify.record-proof', 'attestation record checkpoint');
  proveInclusion(b.attestation.record, parsed.index, parsed.proof, opened.checkpoint, 'verify.record-proof', 'attestation record');
  const cp = ctx.checkpoint!;
  if (opened.checkpoint.size === cp.size && !equalBytes(opened.checkpoint.rootHash, cp.rootHash)) {
    fail('verify.record-proof', `the record's and the receipt's checkpoints have size ${cp.size} but different roots: the log has forked`);
  }
  // The record is published before the executor signs any receipt.
  if (parsed.index >= ctx.index!) fail('verify.record-index', `the attestation record (entry ${parsed.index}) does not precede the receipt (entry ${ctx.index})`);
  ctx.recordIndex = parsed.index;
  let verified;
  try {
    verified = verifyDsse(b.attestation.record, ctx.executorKey!);
  } catch (err) {
    return rethrow('verify.record-signature', 'attestation record is not signed by the receipt\'s executor key', err);
  }
  try {
    ctx.record = asAttestationRecordStatement(parseStatement(verified.payloadType, verified.payload));
  } catch (err) {
    rethrow('verify.record-statement', 'attestation record', err);
  }
  const rec = ctx.record!.predicate;
  const receipt = ctx.receipt!.predicate;
  const keyB64 = receipt.executor.signingKey;
  if (rec.keys.receiptKey !== keyB64 || rec.runtimeData['attex-receipt-key'] !== keyB64) {
    fail('verify.record-key', 'the attestation record binds a different receipt key than the one that signed the receipt');
  }
  if (receipt.attestation.recordLogIndex !== parsed.index) {
    fail('verify.record-index', `the receipt names attestation record index ${receipt.attestation.recordLogIndex}, the bundle's record is at ${parsed.index}`);
  }
  if (rec.executor.id !== receipt.executor.id) fail('verify.record-key', 'the attestation record belongs to another executor id');
  const contradiction = recordContradiction(rec, receipt);
  if (contradiction !== undefined) fail('verify.record-statement', contradiction);
  // The evidence is judged at createdAt, which the executor key signs: never at a time to come.
  const future = options.now === undefined ? undefined : fromTheFuture({ createdAt: rec.createdAt }, options.now);
  if (future !== undefined) fail('verify.record-time', future);
  const evidenceBytes = decodeBase64Canonical(rec.evidence.evidence);
  if (evidenceBytes === null) return fail('verify.record-evidence', 'the record\'s evidence is not canonical base64');
  const digest = bytesToHex(sha256Portable(evidenceBytes));
  if (ctx.record!.subject[0]?.digest.sha256 !== digest) fail('verify.record-evidence', 'the record subject is not the SHA-256 of its evidence');
  if (receipt.attestation.evidenceDigest.sha256 !== digest) fail('verify.record-evidence', 'the receipt names other evidence than the attestation record carries');
  if (receipt.attestation.evidenceKind !== rec.evidence.kind) fail('verify.record-evidence', 'the receipt and the record disagree on the evidence kind');

  // Binding: the evidence's report data must be the hash of the record's runtime data.
  const createdAt = new Date(strictInstant(rec.createdAt)!);
  ctx.evidenceResult = await runEvidenceVerifier(rec, trust, createdAt);
  const r = ctx.evidenceResult;
  // Evidence rejected outright (junk, wrong kind, a bad signature or chain) is an evidence
  // failure, not a binding one: its report data proves nothing either way. Evidence refused
  // only for chaining to a simulated root is judged at the evidence step.
  if (r.outcome === 'reject' && !r.reasons.every((x) => x.code === 'attestation.simulated-root')) failRejectedEvidence(r);
  const bound = boundReportData(r);
  if (bound === null) {
    const why = r.reasons[0];
    fail('verify.binding', `cannot read the evidence's report data${why ? ` (${why.code}: ${why.message})` : ''}`);
  }
  if (!equalBytes(bound!, reportDataFor(rec.runtimeData as unknown as Record<string, unknown>))) {
    fail('verify.binding', 'the evidence\'s report data does not bind this record\'s runtime data (receipt key, TEE key, nonce)');
  }
  return `attestation record is entry ${parsed.index}, signed by the same key, which the evidence binds in its report data`;
}

function failRejectedEvidence(r: VerificationResult): never {
  const simulated = r.reasons.some((x) => x.code === 'attestation.simulated-root');
  return fail(simulated ? 'verify.simulated' : 'verify.evidence', `evidence rejected: ${r.reasons.map((x) => `${x.code}: ${x.message}`).join('; ') || 'no reason given'}`);
}

async function runEvidenceVerifier(rec: AttestationRecordPredicate, trust: VerifyTrust, at: Date): Promise<VerificationResult> {
  const store: TrustStore = { ...trust.evidence, allowSimulated: trust.allowSimulated === true };
  // The record's schema matches EvidencePackage; verifyEvidence re-validates it and never throws.
  return verifyEvidence(rec.evidence as Parameters<typeof verifyEvidence>[0], { trust: store, now: at });
}

async function stepEvidence(ctx: Context, trust: VerifyTrust): Promise<string> {
  const r = ctx.evidenceResult!;
  const receipt = ctx.receipt!.predicate;
  const reasons = (rs: readonly Reason[]) => rs.map((x) => `${x.code}: ${x.message}`).join('; ');
  if (r.outcome === 'reject') failRejectedEvidence(r);
  if (r.simulated && trust.allowSimulated !== true) fail('verify.simulated', 'evidence chains to a simulated root and simulated roots are not allowed');
  if (r.tee !== receipt.attestation.tee) fail('verify.evidence', `the receipt claims TEE ${receipt.attestation.tee}, the evidence is ${r.tee}`);
  const measured = r.fields['measurement'] ?? r.fields['mr_td'];
  if (typeof measured === 'string' && measured.toLowerCase() !== receipt.attestation.measurement) {
    fail('verify.measurement', 'the receipt\'s measurement is not the one in the evidence');
  }
  let appraisal = '';
  {
    const policy = trust.appraisalPolicy ?? baselinePolicy(trust.allowSimulated === true);
    const reportData = reportDataFor(ctx.record!.predicate.runtimeData as unknown as Record<string, unknown>);
    let a;
    try {
      a = appraise(r, policy, { reportData });
    } catch (err) {
      return rethrow('verify.appraisal', 'appraisal', err);
    }
    ctx.appraisal = a.status;
    if (a.status === 'contraindicated') fail('verify.appraisal', `appraisal policy ${a.policyId}: contraindicated: ${reasons(a.reasons)}`);
    appraisal = `; appraisal ${a.status} under ${a.policyId}`;
  }
  const note = r.outcome === 'accept' ? '' : r.outcome === 'accept-tcb-not-uptodate' ? ' (TCB not up to date)' : ' (chain only: TCB not evaluated)';
  return `${r.kind} evidence chains to a ${r.simulated ? 'SIMULATED' : 'vendor'} root at ${ctx.record!.predicate.createdAt}${note}${appraisal}`;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

