/**
 * The broker's view of evidence verification and appraisal, as one injected object. The server
 * never imports a verifier directly: `createEvidenceVerifier` wires the real modules
 * (verifyEvidence with the broker's trust store, appraise with its policy), and tests may wire
 * the same real modules with a different trust store, policy or clock.
 */
import type { Reason } from '../errors/index.ts';
import type { TeeName, TrustStore, VerificationResult } from '../attestation/types.ts';
import type { EvidencePackage } from '../attestation/evidence/index.ts';

/** Mirrors `Appraisal` from src/attestation/appraisal (the fields the broker records). */
export interface BrokerAppraisal {
  readonly status: 'affirming' | 'warning' | 'contraindicated';
  readonly tee: TeeName;
  readonly trustworthinessVector: Readonly<Record<string, number>>;
  readonly reasons: readonly Reason[];
  readonly policyId: string;
  readonly policyDigest: string;
}

export interface EvidenceVerifier {
  /** Strict decode of untrusted JSON; throws AttexError `evidence.malformed`. */
  decode(json: unknown): EvidencePackage;
  /** Never throws; `now` comes from the broker's clock. */
  verify(pkg: EvidencePackage, now: Date): Promise<VerificationResult>;
  /** Appraise a verification result against the broker's attestation policy. */
  appraise(result: VerificationResult, expected: { reportData: Uint8Array }): BrokerAppraisal;
}

export interface EvidenceVerifierParts<Policy> {
  readonly trust: TrustStore;
  readonly policy: Policy;
  readonly decodeEvidencePackage: (json: unknown) => EvidencePackage;
  readonly verifyEvidence: (pkg: EvidencePackage, opts: { trust: TrustStore; now: Date }) => Promise<VerificationResult>;
  readonly appraise: (result: VerificationResult, policy: Policy, expected?: { reportData?: Uint8Array }) => BrokerAppraisal;
}

export function createEvidenceVerifier<Policy>(parts: EvidenceVerifierParts<Policy>): EvidenceVerifier {
  return {
    decode: (json) => parts.decodeEvidencePackage(json),
    verify: (pkg, now) => parts.verifyEvidence(pkg, { trust: parts.trust, now }),
    appraise: (result, expected) => parts.appraise(result, parts.policy, expected),
  };
}
