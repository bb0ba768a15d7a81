/**
 * AMD SEV-SNP evidence: parse (abi), report fields in the vectors' encodings (fields), and offline
 * verification against AMD roots (verify). Reason codes: docs/attestation-snp.md.
 */
export {
  parseSnpReport,
  decodeTcb,
  decodePolicy,
  decodePlatformInfo,
  productFromCpuid,
  SNP_REPORT_LENGTH,
  SNP_SIGNED_LENGTH,
  SUPPORTED_REPORT_VERSIONS,
} from './abi.ts';
export type { SnpReport, TcbVersion, GuestPolicy, PlatformInfo, CpuId, FirmwareVersion, SigningKeyType } from './abi.ts';
export { snpFields } from './fields.ts';
export { parseVekCert } from './cert.ts';
export type { VekCert, VekKind, CertSpl } from './cert.ts';
export { createSnpVerifier, verifySnp, defaultSnpVerifier } from './verify.ts';
export type { SnpVerifier, SnpVerifierOptions, SnpEvaluation } from './verify.ts';
