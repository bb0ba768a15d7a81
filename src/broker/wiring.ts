/**
 * Wires the real attestation modules into the broker's EvidenceVerifier: the trust store
 * (vendor roots, plus the simulated TEE's roots when simulated evidence is allowed), the
 * appraisal policy, verifyEvidence and appraise.
 */
import { decodeEvidencePackage, loadTrustStore, verifyEvidence } from '../attestation/evidence/index.ts';
import { appraise, loadPolicy, loadPolicyFile, type AppraisalPolicy } from '../attestation/appraisal/index.ts';
import type { AmdRootSet, IntelRoot, TrustStore } from '../attestation/types.ts';
import { createEvidenceVerifier, type EvidenceVerifier } from './verifier.ts';

export interface VerifierConfig {
  /** Appraisal policy document (parsed JSON), used when `policyFile` is not given. */
  readonly policy?: unknown;
  /** Path of an appraisal policy JSON file. */
  readonly policyFile?: string;
  readonly allowSimulated: boolean;
  readonly rootsDir?: string;
  readonly extraAmd?: readonly AmdRootSet[];
  readonly extraIntel?: readonly IntelRoot[];
}

export async function loadBrokerVerifier(c: VerifierConfig): Promise<{ verifier: EvidenceVerifier; trust: TrustStore; policy: AppraisalPolicy }> {
  const policy = c.policyFile !== undefined ? await loadPolicyFile(c.policyFile) : loadPolicy(c.policy);
  const trust = await loadTrustStore({
    ...(c.rootsDir === undefined ? {} : { rootsDir: c.rootsDir }),
    ...(c.extraAmd === undefined ? {} : { extraAmd: c.extraAmd }),
    ...(c.extraIntel === undefined ? {} : { extraIntel: c.extraIntel }),
    allowSimulated: c.allowSimulated,
  });
  const verifier = createEvidenceVerifier({ trust, policy, decodeEvidencePackage, verifyEvidence, appraise });
  return { verifier, trust, policy };
}
