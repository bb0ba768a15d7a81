/**
 * Intel TDX DCAP quotes: `parseTdxQuote` (bytes to structure, nothing verified) and
 * `verifyTdx` / `createTdxVerifier` (signatures, PCK chain, PCS collateral, TCB status).
 * Reason codes and Intel's rules as implemented: docs/attestation-tdx.md.
 */
export { parseTdxQuote, INTEL_QE_VENDOR_ID } from './quote.ts';
export type { TdxQuote, TdxQuoteHeader, TdReport, QeReport } from './quote.ts';
export { parsePckChain, parseSgxExtension, SGX_EXTENSION_OID } from './pck.ts';
export type { PckChain, SgxExtension } from './pck.ts';
export { tdxFields } from './fields.ts';
export { parseTdxTcbInfo, parseQeIdentity } from './collateral.ts';
export type { TdxTcbInfo, QeIdentity, PlatformTcbLevel, IsvTcbLevel, TdxModuleIdentity } from './collateral.ts';
export { extractSignedJson } from './signed-json.ts';
export { evaluateTdxTcb, evaluateQeIdentity, NO_MATCHING_LEVEL } from './tcb.ts';
export { verifyTdx, createTdxVerifier } from './verify.ts';
export type { TdxVerifier, TdxVerifierOptions } from './verify.ts';
