/**
 * EAR / AR4SI trustworthiness vocabulary (draft-ietf-rats-ar4si, draft-ietf-rats-ear): the
 * eight claims of a trustworthiness vector and the values attex uses. Tiers: 0 and 1 are
 * "none", 2..31 affirming, 32..95 warning, 96..127 (and -1, 99) contraindicated.
 */
export const TRUST_CLAIMS = [
  'instance-identity',
  'configuration',
  'executables',
  'file-system',
  'hardware',
  'runtime-opaque',
  'storage-opaque',
  'sourced-data',
] as const;

export type TrustClaim = (typeof TRUST_CLAIMS)[number];
export type TrustworthinessVector = Record<TrustClaim, number>;
export type AppraisalStatus = 'affirming' | 'warning' | 'contraindicated';

export const AR4SI = {
  NO_CLAIM: 0,
  VERIFIER_MALFUNCTION: -1,
  CRYPTO_VALIDATION_FAILED: 99,
  TRUSTWORTHY_INSTANCE: 2,
  UNTRUSTWORTHY_INSTANCE: 96,
  APPROVED_CONFIG: 2,
  UNSUPPORTABLE_CONFIG: 96,
  APPROVED_RUNTIME: 2,
  CONTRAINDICATED_RUNTIME: 96,
  GENUINE_HARDWARE: 2,
  UNSAFE_HARDWARE: 32,
  CONTRAINDICATED_HARDWARE: 96,
  UNRECOGNIZED_HARDWARE: 97,
  ENCRYPTED_MEMORY_RUNTIME: 2,
} as const;

export function emptyVector(): TrustworthinessVector {
  return Object.fromEntries(TRUST_CLAIMS.map((c) => [c, AR4SI.NO_CLAIM])) as TrustworthinessVector;
}

export function tierOf(value: number): AppraisalStatus | 'none' {
  if (value === -1 || value === 99 || value >= 96) return 'contraindicated';
  if (value >= 32) return 'warning';
  if (value >= 2) return 'affirming';
  return 'none';
}

/** The overall status is the worst tier of any claim. */
export function statusOf(vector: TrustworthinessVector): AppraisalStatus {
  const tiers = Object.values(vector).map(tierOf);
  if (tiers.includes('contraindicated')) return 'contraindicated';
  if (tiers.includes('warning')) return 'warning';
  return 'affirming';
}
