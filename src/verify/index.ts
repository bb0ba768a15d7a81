/**
 * The offline receipt verifier: bundle format, trust file, and `verifyBundle`.
 * Formats and codes: docs/verify.md.
 */
export { BUNDLE_MEDIA_TYPE, MAX_BUNDLE_BYTES, encodeBundle, parseBundle } from './bundle.ts';
export type { ReceiptBundle, ReceiptBundleJson } from './bundle.ts';
export { STEPS, verifyBundle } from './verify.ts';
export type { BundleVerification, StepName, StepResult, VerifyTrust } from './verify.ts';
export { loadVerifyTrust, parseExecutorKey, parseTrustFile } from './trust.ts';
export type { TrustFile } from './trust.ts';
