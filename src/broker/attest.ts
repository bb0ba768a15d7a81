/**
 * The /attest decision, with its I/O (clock, verifier) passed in. Order of checks: the session's
 * nonce is consumed first (so any second attempt is a replay), then the runtime-data nonce must
 * equal the one issued, the evidence must decode, be of a kind the session's tee allows, verify
 * to a trusted root, bind the runtime data in its report_data, and appraise as not
 * contraindicated. Every finding is returned (for the audit log), the first one decides the
 * problem the client sees.
 */
import { AttexError, type Reason } from '../errors/index.ts';
import { boundReportData, reportDataFor } from '../attestation/binding/index.ts';
import type { VerificationResult } from '../attestation/types.ts';
import type { EvidencePackage } from '../attestation/evidence/index.ts';
import { bytesEqual, canonicalJson, sha256, toHex } from '../util/index.ts';
import { importTeePublicKey } from './jwe.ts';
import { BrokerProblem } from './problems.ts';
import { SUPPORTED_TEES, primaryEvidence, type KbsAttestation } from './protocol.ts';
import type { Session } from './session.ts';
import type { AnnotatedEvidence, EarSubmod } from './token.ts';
import type { BrokerAppraisal, EvidenceVerifier } from './verifier.ts';

/**
 * Appraisal reasons that only lower the status to `warning`; when the status is contraindicated
 * the client is told the first reason that is not one of these (all are in the audit entry).
 */
const WARNING_LEVEL_REASONS: ReadonlySet<string> = new Set(['appraisal.simulated', 'appraisal.tcb-not-uptodate']);

export interface AttestOutcomeBase {
  readonly evidenceDigest: string | null;
  readonly result: VerificationResult | null;
  readonly appraisal: BrokerAppraisal | null;
  /** Every finding code, in the order found (verifier, binding, appraisal). */
  readonly reasons: readonly string[];
}

export type AttestOutcome =
  | (AttestOutcomeBase & { readonly ok: true; readonly submod: EarSubmod })
  | (AttestOutcomeBase & { readonly ok: false; readonly problem: BrokerProblem });

/** Measurement and debug flag under the field names of each verifier's result. */
export function measurementOf(result: VerificationResult): string | null {
  const m = result.kind === 'tdx' ? result.fields['mr_td'] : result.fields['measurement'];
  return typeof m === 'string' ? m.toLowerCase() : null;
}

function debugOf(result: VerificationResult): boolean | null {
  const d = result.kind === 'tdx' ? result.fields['debug'] : result.fields['debug_allowed'];
  return typeof d === 'boolean' ? d : null;
}

export function evidenceDigest(pkg: EvidencePackage): string {
  return `sha256:${toHex(sha256(canonicalJson(pkg)))}`;
}

export async function decideAttestation(session: Session & { state: 'authed' }, body: KbsAttestation, verifier: EvidenceVerifier, now: Date): Promise<AttestOutcome> {
  const none = { evidenceDigest: null, result: null, appraisal: null };
  const fail = (problem: BrokerProblem, extra: Partial<AttestOutcomeBase> = {}): AttestOutcome => ({
    ok: false,
    problem,
    ...none,
    reasons: [problem.code],
    ...extra,
  });

  const runtimeData = body['runtime-data'];
  if (runtimeData.nonce !== session.nonce) {
    return fail(new BrokerProblem('AttestationFailed', 'broker.nonce-mismatch', 'runtime-data.nonce is not the nonce this session was issued'));
  }
  try {
    await importTeePublicKey(runtimeData['tee-pubkey']);
  } catch (err) {
    return fail(new BrokerProblem('MalformedRequest', 'broker.tee-pubkey', (err as AttexError).message));
  }

  const unwrapped = primaryEvidence(body['tee-evidence']);
  if (!unwrapped.ok) return fail(new BrokerProblem('MalformedRequest', 'broker.tee-evidence', unwrapped.message));
  let pkg: EvidencePackage;
  try {
    pkg = verifier.decode(unwrapped.value);
  } catch (err) {
    const code = err instanceof AttexError ? err.code : 'evidence.malformed';
    return fail(new BrokerProblem('MalformedRequest', code, err instanceof AttexError ? err.message : 'tee-evidence is not an evidence package'));
  }
  const digest = evidenceDigest(pkg);
  const allowedKinds: readonly string[] = SUPPORTED_TEES[session.tee];
  if (!allowedKinds.includes(pkg.kind)) {
    return fail(new BrokerProblem('AttestationFailed', 'broker.evidence-kind', `evidence kind ${pkg.kind} does not match tee ${session.tee}`), { evidenceDigest: digest });
  }

  const result = await verifier.verify(pkg, now);
  const reasons: string[] = [];
  if (result.outcome === 'reject') {
    const first: Reason = result.reasons[0] ?? { code: 'attestation.rejected', message: 'the evidence was rejected' };
    reasons.push(...result.reasons.map((r) => r.code));
    if (reasons.length === 0) reasons.push(first.code);
    return { ok: false, problem: new BrokerProblem('AttestationFailed', first.code, first.message), evidenceDigest: digest, result, appraisal: null, reasons };
  }

  // Binding and appraisal are both evaluated so the audit log records every finding.
  const expectedReportData = reportDataFor(runtimeData);
  const bound = boundReportData(result);
  const bindingOk = bound !== null && bytesEqual(bound, expectedReportData);
  if (!bindingOk) reasons.push('broker.binding-mismatch');
  const appraisal = verifier.appraise(result, { reportData: expectedReportData });
  reasons.push(...appraisal.reasons.map((r) => r.code));
  if (appraisal.status === 'contraindicated' && appraisal.reasons.length === 0) reasons.push('appraisal.contraindicated');
  const base = { evidenceDigest: digest, result, appraisal, reasons };

  if (!bindingOk) {
    return { ok: false, ...base, problem: new BrokerProblem('AttestationFailed', 'broker.binding-mismatch', 'the evidence report_data does not bind this runtime data (nonce and tee-pubkey)') };
  }
  if (appraisal.status === 'contraindicated') {
    const first = appraisal.reasons.find((r) => !WARNING_LEVEL_REASONS.has(r.code)) ?? appraisal.reasons[0] ?? { code: 'appraisal.contraindicated', message: 'the appraisal policy rejected the evidence' };
    return { ok: false, ...base, problem: new BrokerProblem('AttestationFailed', first.code, first.message) };
  }

  const annotated: AnnotatedEvidence = {
    tee: result.tee,
    kind: result.kind,
    simulated: result.simulated,
    measurement: measurementOf(result),
    debug: debugOf(result),
    'evidence-digest': digest,
    'report-data': toHex(expectedReportData),
    'tee-pubkey': runtimeData['tee-pubkey'],
    'runtime-data': runtimeData,
    'verifier-outcome': result.outcome,
    'tcb-status': result.tcb_status,
    'appraisal-policy-digest': appraisal.policyDigest,
  };
  const submod: EarSubmod = {
    'ear.status': appraisal.status,
    'ear.trustworthiness-vector': appraisal.trustworthinessVector,
    'ear.appraisal-policy-id': appraisal.policyId,
    'ear.veraison.annotated-evidence': annotated,
  };
  return { ok: true, ...base, submod };
}
