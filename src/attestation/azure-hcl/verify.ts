/**
 * Azure HCL verification: the embedded SNP report goes through every SNP check, then the runtime
 * claims must be bound by it: report_data = digest(claims bytes as stored), zero-padded to 64.
 * Never throws: every failure is a Reason.
 */
import type { Reason } from '../../errors/index.ts';
import { bytesEqual } from '../../util/index.ts';
import { defaultSnpVerifier, snpFields, type SnpVerifier } from '../snp/index.ts';
import { amdResult, inputReasons } from '../snp/verify.ts';
import type { SnpVerifyInput, VerificationResult } from '../types.ts';
import { LIMITS } from '../x509/index.ts';
import { claimsDigest, hclAkPub, hclUserData, parseHclReport, type HclReport } from './parse.ts';

export interface AzureHclVerifier {
  verify(input: SnpVerifyInput): Promise<VerificationResult>;
}

/** Does the SNP report_data bind the claims? (digest, then zeros to 64 bytes) */
export function claimsBindingReasons(hcl: HclReport): Reason[] {
  const report = hcl.snpReport;
  const digest = claimsDigest(hcl);
  if (report === null) return [{ code: 'hcl.claims-binding', message: 'no SNP report to bind the claims' }];
  if (digest === null) return [{ code: 'hcl.claims-binding', message: `unknown report_data hash type ${hcl.hashType}` }];
  const head = report.reportData.subarray(0, digest.length);
  const tail = report.reportData.subarray(digest.length);
  if (!bytesEqual(head, digest)) {
    return [{ code: 'hcl.claims-binding', message: `report_data[0:${digest.length}] is not the ${hcl.hashTypeName} of the runtime claims` }];
  }
  if (!tail.every((b) => b === 0)) {
    return [{ code: 'hcl.claims-binding', message: `report_data[${digest.length}:64] is not zero` }];
  }
  return [];
}

function hclResult(simulated: boolean, reasons: Reason[], fields: Record<string, unknown>): VerificationResult {
  return amdResult('azure-hcl-snp', simulated ? 'sim-snp' : 'azure-hcl-snp', simulated, reasons, fields);
}

/** An HCL verifier on top of an SNP verifier (default: the module-wide one, sharing its chain cache). */
export function createAzureHclVerifier(opts: { snp?: SnpVerifier } = {}): AzureHclVerifier {
  async function verify(input: SnpVerifyInput): Promise<VerificationResult> {
    const reasons: Reason[] = [];
    let fields: Record<string, unknown> = {};
    let simulated = false;
    try {
      const bad = inputReasons(input);
      if (bad.length > 0) return hclResult(false, bad, fields);
      if (input.evidence.length > LIMITS.hclReportBytes) {
        const message = `HCL report is ${input.evidence.length} bytes, more than the ${LIMITS.hclReportBytes} allowed`;
        return hclResult(false, [{ code: 'hcl.too-large', message }], fields);
      }
      const hcl = parseHclReport(input.evidence);
      const snp = hcl.snpReport;
      if (snp === null) {
        reasons.push({ code: 'hcl.report-type', message: `HCL report carries report type ${hcl.reportTypeName ?? hcl.reportType}; only SNP (2) is verified here` });
        return hclResult(false, reasons, fields);
      }
      const evaluation = await (opts.snp ?? defaultSnpVerifier()).evaluate(snp, input);
      simulated = evaluation.simulated;
      reasons.push(...evaluation.reasons);
      reasons.push(...claimsBindingReasons(hcl));
      const userData = hclUserData(hcl);
      if (userData === null) reasons.push({ code: 'hcl.claims', message: 'runtime claims have no user-data of 64 bytes in hex' });
      fields = {
        ...snpFields(snp, evaluation.product),
        user_data: userData,
        claims: hcl.claims,
        hcl_ak_pub: hclAkPub(hcl),
      };
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code;
      reasons.push({
        code: typeof code === 'string' && (code.startsWith('hcl.') || code.startsWith('snp.')) ? code : 'hcl.internal',
        message: err instanceof Error ? err.message : String(err),
      });
    }
    return hclResult(simulated, reasons, fields);
  }
  return { verify };
}

let defaultVerifier: AzureHclVerifier | null = null;

/** Verify an Azure HCL report (SNP inside) and its VCEK at `input.now`. Never throws. */
export function verifyAzureHcl(input: SnpVerifyInput): Promise<VerificationResult> {
  defaultVerifier ??= createAzureHclVerifier();
  return defaultVerifier.verify(input);
}
