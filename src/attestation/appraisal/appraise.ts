/**
 * Appraisal: a verified attestation (VerificationResult) compared against a policy's reference
 * values, producing an EAR-style verdict. Pure: no I/O, no clock. Every rule that fails adds a
 * reason with a stable code and lowers the claim it concerns; the status is the worst claim.
 */
import type { Reason } from '../../errors/index.ts';
import { bytesEqual } from '../../util/index.ts';
import { boundReportData } from '../binding/index.ts';
import type { AmdProduct, TeeName, VerificationResult } from '../types.ts';
import { AR4SI, type AppraisalStatus, emptyVector, statusOf, type TrustClaim, type TrustworthinessVector } from './ear.ts';
import type { AppraisalPolicy, TcbFloor } from './policy.ts';

export interface Appraisal {
  readonly status: AppraisalStatus;
  readonly tee: TeeName;
  readonly trustworthinessVector: Record<string, number>;
  readonly reasons: Reason[];
  readonly policyId: string;
  readonly policyDigest: string;
}

const DEBUG_BIT = 19n;

class Findings {
  readonly vector: TrustworthinessVector = emptyVector();
  readonly reasons: Reason[] = [];
  /** Set a claim, never improving one already lowered. */
  set(claim: TrustClaim, value: number): void {
    const current = this.vector[claim];
    const rank = (v: number) => (v === -1 || v === 99 ? 1000 : v);
    if (current === 0 || rank(value) > rank(current)) this.vector[claim] = value;
  }
  fail(claim: TrustClaim, value: number, code: string, message: string): void {
    this.set(claim, value);
    this.reasons.push({ code, message });
  }
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function productOf(fields: Readonly<Record<string, unknown>>): AmdProduct | null {
  const cpuid = fields['cpuid'] as { product?: unknown } | null | undefined;
  const p = cpuid?.product;
  if (p === 'Milan' || p === 'Genoa' || p === 'Turin') return p;
  const tcb = fields['reported_tcb'] as Record<string, unknown> | undefined;
  return tcb && 'fmc' in tcb ? 'Turin' : null;
}

function checkAllowlist(f: Findings, claim: TrustClaim, list: readonly string[] | undefined, value: unknown, field: string, code: string): boolean {
  if (list === undefined) return false;
  const v = str(value);
  if (v !== null && list.includes(v)) return true;
  f.fail(claim, claim === 'executables' ? AR4SI.CONTRAINDICATED_RUNTIME : AR4SI.UNSUPPORTABLE_CONFIG, code, `${field} ${v ?? '(absent)'} is not in the policy's allowlist`);
  return true;
}

function appraiseSnp(f: Findings, fields: Readonly<Record<string, unknown>>, policy: AppraisalPolicy): void {
  const rules = policy.snp;
  if (fields['debug_allowed'] !== false && !policy.allowDebug) {
    f.fail('configuration', AR4SI.UNSUPPORTABLE_CONFIG, 'appraisal.debug', 'the guest policy allows debugging (SNP policy bit 19): the host can read and change guest memory');
  }
  const vmpl = fields['vmpl'];
  if (typeof vmpl !== 'number' || !rules.allowedVmpls.includes(vmpl)) {
    f.fail('configuration', AR4SI.UNSUPPORTABLE_CONFIG, 'appraisal.vmpl', `report from VMPL ${String(vmpl)}; the policy allows VMPL ${rules.allowedVmpls.join(', ')}`);
  }
  let guestPolicy: bigint | null = null;
  try {
    guestPolicy = BigInt(String(fields['policy']));
  } catch {
    guestPolicy = null;
  }
  for (const bit of rules.requiredPolicyBits) {
    if (guestPolicy === null || ((guestPolicy >> BigInt(bit)) & 1n) === 0n) {
      f.fail('configuration', AR4SI.UNSUPPORTABLE_CONFIG, 'appraisal.guest-policy', `guest policy bit ${bit} must be set`);
    }
  }
  for (const bit of rules.forbiddenPolicyBits) {
    if (BigInt(bit) === DEBUG_BIT) continue; // governed by allowDebug above
    if (guestPolicy === null || ((guestPolicy >> BigInt(bit)) & 1n) === 1n) {
      f.fail('configuration', AR4SI.UNSUPPORTABLE_CONFIG, 'appraisal.guest-policy', `guest policy bit ${bit} must be clear`);
    }
  }
  checkAllowlist(f, 'configuration', rules.hostData, fields['host_data'], 'HOST_DATA', 'appraisal.host-data');
  if (rules.minTcb && Object.keys(rules.minTcb).length > 0) {
    const product = productOf(fields);
    const floor: TcbFloor | undefined = product ? rules.minTcb[product] : undefined;
    if (product === null) {
      f.fail('hardware', AR4SI.CONTRAINDICATED_HARDWARE, 'appraisal.tcb-product-unknown', 'the report does not name its product (v2 report without CPUID), so its TCB cannot be compared with a per-product minimum');
    } else if (floor) {
      const tcb = (fields['reported_tcb'] ?? {}) as Record<string, unknown>;
      for (const [component, min] of Object.entries(floor) as [keyof TcbFloor, number][]) {
        const got = tcb[component];
        if (typeof got !== 'number' || got < min) {
          f.fail('hardware', AR4SI.CONTRAINDICATED_HARDWARE, 'appraisal.tcb-below-minimum', `${product} reported TCB ${component} ${String(got)} is below the policy minimum ${min}`);
        }
      }
    }
  }
  if (checkAllowlist(f, 'executables', rules.measurements, fields['measurement'], 'MEASUREMENT', 'appraisal.measurement')) f.set('executables', AR4SI.APPROVED_RUNTIME);
}

function appraiseTdx(f: Findings, result: VerificationResult, policy: AppraisalPolicy): void {
  const { fields } = result;
  const rules = policy.tdx;
  if (fields['debug'] !== false && !policy.allowDebug) {
    f.fail('configuration', AR4SI.UNSUPPORTABLE_CONFIG, 'appraisal.debug', 'the TD is debuggable (td_attributes bit 0): the host can read and change TD memory');
  }
  const attrs = fields['td_attributes_decoded'] as { sept_ve_disable?: unknown } | undefined;
  if (rules.requireSeptVeDisable && attrs?.sept_ve_disable !== true) {
    f.fail('configuration', AR4SI.UNSUPPORTABLE_CONFIG, 'appraisal.sept-ve-disable', 'SEPT_VE_DISABLE (td_attributes bit 28) is not set');
  }
  checkAllowlist(f, 'configuration', rules.mrConfigId, fields['mr_config_id'], 'MRCONFIGID', 'appraisal.mr-config-id');
  const checked = (fields['collateral_checked'] ?? {}) as Record<string, unknown>;
  const missing = rules.requiredCollateral.filter((item) => checked[item] !== true);
  if (missing.length > 0) {
    f.fail('hardware', AR4SI.CONTRAINDICATED_HARDWARE, 'appraisal.collateral-missing', `the verdict was reached without ${missing.join(', ')}; the policy requires it (tdx.requiredCollateral)`);
  }
  const status = result.tcb_status;
  if (status === null) {
    f.fail('hardware', AR4SI.CONTRAINDICATED_HARDWARE, 'appraisal.tcb-unknown', 'no Intel TCB status (evidence verified without collateral)');
  } else if (!rules.acceptableTcbStatuses.includes(status) || status === 'Revoked') {
    f.fail('hardware', AR4SI.CONTRAINDICATED_HARDWARE, 'appraisal.tcb-status', `Intel TCB status ${status} is not acceptable (policy accepts ${rules.acceptableTcbStatuses.join(', ')})`);
  } else if (status !== 'UpToDate') {
    const advisories = result.advisory_ids.length > 0 ? ` (${result.advisory_ids.join(', ')})` : '';
    f.fail('hardware', AR4SI.UNSAFE_HARDWARE, 'appraisal.tcb-not-uptodate', `Intel TCB status ${status} accepted by policy${advisories}`);
  }
  let pinned = false;
  for (const [field, list] of [['mr_td', rules.mrTd], ['rtmr0', rules.rtmr0], ['rtmr1', rules.rtmr1], ['rtmr2', rules.rtmr2], ['rtmr3', rules.rtmr3]] as const) {
    pinned = checkAllowlist(f, 'executables', list, fields[field], field.toUpperCase(), 'appraisal.measurement') || pinned;
  }
  if (pinned) f.set('executables', AR4SI.APPROVED_RUNTIME);
}

export function appraise(result: VerificationResult, policy: AppraisalPolicy, expected: { reportData?: Uint8Array } = {}): Appraisal {
  const f = new Findings();
  const done = (): Appraisal => ({
    status: statusOf(f.vector),
    tee: result.tee,
    trustworthinessVector: { ...f.vector },
    reasons: f.reasons,
    policyId: policy.id,
    policyDigest: policy.digest,
  });

  if (result.outcome === 'reject') {
    for (const r of result.reasons) f.reasons.push(r);
    const simulatedOnly = result.reasons.length > 0 && result.reasons.every((r) => r.code === 'attestation.simulated-root');
    if (simulatedOnly) f.fail('hardware', AR4SI.UNRECOGNIZED_HARDWARE, 'appraisal.simulated', 'the evidence comes from the simulated TEE, which this policy does not allow');
    else f.fail('instance-identity', AR4SI.CRYPTO_VALIDATION_FAILED, 'appraisal.evidence-rejected', 'the evidence failed verification');
    return done();
  }
  if (result.outcome === 'chain-only' && result.kind !== 'tdx') {
    f.fail('instance-identity', AR4SI.CRYPTO_VALIDATION_FAILED, 'appraisal.evidence-rejected', `unexpected outcome ${result.outcome}`);
    return done();
  }
  f.set('instance-identity', AR4SI.TRUSTWORTHY_INSTANCE);

  if (!policy.evidenceKinds.includes(result.kind)) {
    f.fail('hardware', AR4SI.UNRECOGNIZED_HARDWARE, 'appraisal.kind-not-allowed', `evidence kind ${result.kind} is not allowed by policy ${policy.id}`);
  }
  if (result.simulated) {
    if (policy.allowSimulated) f.fail('hardware', AR4SI.UNSAFE_HARDWARE, 'appraisal.simulated', 'simulated TEE: allowed by policy, but it proves nothing about hardware');
    else f.fail('hardware', AR4SI.UNRECOGNIZED_HARDWARE, 'appraisal.simulated', 'the evidence comes from the simulated TEE, which this policy does not allow');
  } else {
    f.set('runtime-opaque', AR4SI.ENCRYPTED_MEMORY_RUNTIME);
  }

  if (result.kind === 'tdx') appraiseTdx(f, result, policy);
  else appraiseSnp(f, result.fields, policy);

  if (f.vector.configuration === AR4SI.NO_CLAIM) f.set('configuration', AR4SI.APPROVED_CONFIG);
  if (f.vector.hardware === AR4SI.NO_CLAIM) f.set('hardware', AR4SI.GENUINE_HARDWARE);

  if (expected.reportData !== undefined) {
    const bound = boundReportData(result);
    if (bound === null || !bytesEqual(bound, expected.reportData)) {
      f.fail('instance-identity', AR4SI.UNTRUSTWORTHY_INSTANCE, 'appraisal.report-data-mismatch', 'the evidence does not bind the expected report data (stale, replayed or for other keys)');
    }
  }
  return done();
}
