/**
 * Evidence kind detection from raw bytes. Cheap structural checks only: this decides which
 * verifier looks at the bytes, never whether they are trustworthy.
 */
import type { EvidenceKind } from '../types.ts';

/** Size of an AMD SEV-SNP ATTESTATION_REPORT. */
export const SNP_REPORT_LENGTH = 1184;
const SNP_VERSIONS: ReadonlySet<number> = new Set([2, 3, 5]);
const TDX_QUOTE_VERSIONS: ReadonlySet<number> = new Set([4, 5]);
const TDX_TEE_TYPE = 0x81;
const TDX_HEADER_LENGTH = 48;
/** "HCLA": the magic that opens an Azure vTPM HCL report. */
const HCL_MAGIC = [0x48, 0x43, 0x4c, 0x41] as const;

function u16le(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] ?? 0) | ((bytes[offset + 1] ?? 0) << 8);
}

function u32le(bytes: Uint8Array, offset: number): number {
  return (u16le(bytes, offset) + u16le(bytes, offset + 2) * 0x10000) >>> 0;
}

/**
 * Which kind of evidence `bytes` looks like, or null.
 * - Azure HCL report: starts with "HCLA".
 * - SEV-SNP report: exactly 1184 bytes with VERSION (u32 LE at 0) 2, 3 or 5. Checked before TDX
 *   because a TDX quote can never be this short, while a v5 SNP report with GUEST_SVN 0x81
 *   would otherwise look like a quote header.
 * - TDX quote: u16 version 4 or 5 at 0 and TEE type 0x81 (u32 LE) at 4.
 */
export function detectEvidenceKind(bytes: Uint8Array): EvidenceKind | null {
  if (!(bytes instanceof Uint8Array)) return null;
  if (bytes.length >= HCL_MAGIC.length && HCL_MAGIC.every((b, i) => bytes[i] === b)) return 'azure-hcl-snp';
  if (bytes.length === SNP_REPORT_LENGTH && SNP_VERSIONS.has(u32le(bytes, 0))) return 'snp';
  if (bytes.length >= TDX_HEADER_LENGTH && TDX_QUOTE_VERSIONS.has(u16le(bytes, 0)) && u32le(bytes, 4) === TDX_TEE_TYPE) {
    return 'tdx';
  }
  return null;
}
