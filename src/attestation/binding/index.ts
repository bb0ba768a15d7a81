/**
 * Key binding: how an executor ties its keys (and the broker's nonce) to hardware evidence.
 *
 * report_data = SHA-384(canonical JSON of the runtime data) zero-padded to 64 bytes, the
 * convention of the Confidential Containers Trustee KBS. The runtime data holds at least
 * `nonce` and `tee-pubkey`; attex adds the executor's receipt-signing key. On Azure the same
 * 64 bytes go into the vTPM user-data index, and the HCL report binds the claims that carry them.
 */
import { bytesEqual, canonicalJson, fromHex, sha384 } from '../../util/index.ts';
import type { VerificationResult } from '../types.ts';

export const REPORT_DATA_LENGTH = 64;

export function reportDataFor(runtimeData: Readonly<Record<string, unknown>>): Uint8Array {
  const out = new Uint8Array(REPORT_DATA_LENGTH);
  out.set(sha384(canonicalJson(runtimeData)), 0);
  return out;
}

/**
 * The 64 bytes a verified piece of evidence binds: the report_data field for SNP and TDX, and
 * for an Azure HCL report the user-data carried in its (report-bound) runtime claims.
 */
export function boundReportData(result: VerificationResult): Uint8Array | null {
  const field = result.kind === 'azure-hcl-snp' ? result.fields['user_data'] : result.fields['report_data'];
  if (typeof field !== 'string') return null;
  try {
    const bytes = fromHex(field);
    return bytes.length === REPORT_DATA_LENGTH ? bytes : null;
  } catch {
    return null;
  }
}

/** True when the evidence's bound report data equals the binding of `runtimeData`. */
export function bindingMatches(result: VerificationResult, runtimeData: Readonly<Record<string, unknown>>): boolean {
  const bound = boundReportData(result);
  return bound !== null && bytesEqual(bound, reportDataFor(runtimeData));
}
