/**
 * Size caps on everything a verifier reads, checked before any parsing. Real values are far
 * below each (a VCEK is ~1.4 KB, a PCK chain ~4 KB, a PCS CRL a few KB, an HCL blob ~2.6 KB, a
 * padded TDX quote 8 KB), so a cap only ever refuses input built to exhaust memory or time.
 */
export const LIMITS = {
  /** One DER certificate. */
  certificateBytes: 16 * 1024,
  /** One DER CRL (~10,000 entries). */
  crlBytes: 512 * 1024,
  /**
   * ASN.1 nodes in one CRL. The parser's default (10,000) refused a genuine CRL of ~1,250
   * entries (Intel's shape: serial, date and a reason-code extension, ~14 nodes with the
   * extension's contents); this lets such a CRL up to `crlBytes` through, while a DER built of
   * minimal nodes (2 bytes each) to inflate the parser's objects is still refused.
   */
  crlNodes: 160 * 1024,
  /** CRLs in one verification. */
  crls: 8,
  /** A PEM issuer chain (characters). */
  pemChars: 64 * 1024,
  /** Certificates in one PEM chain. */
  pemCertificates: 8,
  /** A TDX quote, trailing padding included. */
  tdxQuoteBytes: 64 * 1024,
  /** An Azure HCL report (header, hardware report, runtime claims). */
  hclReportBytes: 64 * 1024,
  /** A PCS TCB info or QE identity body. */
  collateralJsonBytes: 1024 * 1024,
} as const;
