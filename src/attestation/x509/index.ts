/**
 * X.509 plumbing shared by the SNP and TDX verifiers: a bounds-checked DER reader, certificate
 * and CRL profile checks (exact signature algorithm, critical extensions, CA / end-entity roles),
 * strict PEM bundles, size limits, certificate names and fingerprints, and a small LRU cache.
 */
export { readTlvs, readSingleTlv, assertDerSequence, expectTag, decodeOid, decodeSmallUnsigned } from './der.ts';
export { TAG_BOOLEAN, TAG_INTEGER, TAG_BIT_STRING, TAG_OCTET_STRING, TAG_NULL, TAG_OID, TAG_ENUMERATED, TAG_SEQUENCE } from './der.ts';
export type { Tlv } from './der.ts';
export { signatureAlgorithmProblems, certificateProblems, crlProblems } from './profile.ts';
export type { SignatureProfile } from './profile.ts';
export { parsePemCertificates } from './pem.ts';
export { LIMITS } from './limits.ts';
export { certFingerprint, commonName } from './names.ts';
export { LruCache } from './lru.ts';
