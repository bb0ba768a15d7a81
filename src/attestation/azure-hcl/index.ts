/**
 * Azure confidential VMs: the vTPM HCL report wrapping an SEV-SNP report and the runtime claims
 * it binds. Reason codes: docs/attestation-snp.md.
 */
export {
  parseHclReport,
  hclAkPub,
  hclUserData,
  claimsDigest,
  describeHcl,
  HCL_MAGIC,
  HW_REPORT_OFFSET,
  RUNTIME_HEADER_OFFSET,
  CLAIMS_OFFSET,
} from './parse.ts';
export type { HclReport } from './parse.ts';
export { verifyAzureHcl, createAzureHclVerifier, claimsBindingReasons } from './verify.ts';
export type { AzureHclVerifier } from './verify.ts';
