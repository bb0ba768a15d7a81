/** Evidence front door: detect, package, load trust and collateral, verify any kind. */
export { detectEvidenceKind } from './detect.ts';
export {
  type EvidencePackage,
  type EvidencePackageCollateral,
  PACKAGE_LIMITS,
  decodeEvidencePackage,
  encodeEvidencePackage,
  parseEvidencePackage,
  makeEvidencePackage,
  packageCollateral,
  decodeBase64Strict,
} from './package.ts';
export { type LoadTrustStoreOptions, DEFAULT_ROOTS_DIR, loadTrustStore, loadRootsDir, parseSinglePemCertificate } from './trust-store.ts';
export { COLLATERAL_FILES, type CollateralItem, loadCollateralDir } from './collateral-dir.ts';
export { type VerifyEvidenceOptions, verifyEvidence, rejectedResult } from './verify.ts';
