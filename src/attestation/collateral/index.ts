/** Collateral fetching (AMD KDS, Intel PCS) and offline bundles. Never used by the verifiers. */
export { type CollateralFetcher, type CollateralFetcherOptions, type SignedBody, createCollateralFetcher } from './fetcher.ts';
export { type HttpOptions, type HttpResponse, httpGet, parseRetryAfter } from './http.ts';
export { ResponseCache, type CachedResponse } from './cache.ts';
export { writeOfflineBundle } from './bundle.ts';
export { writeFileAtomic, writeDirAtomic } from './atomic.ts';
export {
  DEFAULT_AMD_KDS_URL,
  DEFAULT_INTEL_CERTS_URL,
  DEFAULT_INTEL_PCS_URL,
  HEADER_PCK_CRL_ISSUER_CHAIN,
  HEADER_QE_IDENTITY_ISSUER_CHAIN,
  HEADER_TCB_INFO_ISSUER_CHAIN,
  type PckCa,
  type SnpTcbSpl,
  amdCrlUrl,
  kdsHwId,
  pckCrlUrl,
  rootCaCrlUrl,
  tdxQeIdentityUrl,
  tdxTcbInfoUrl,
  vcekCertChainUrl,
  vcekUrl,
  vlekCertChainUrl,
} from './urls.ts';
