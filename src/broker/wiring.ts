/**
 * Wires the real attestation modules into the broker's EvidenceVerifier: the trust store
 * (vendor roots, plus the simulated TEE's roots when simulated evidence is allowed), the
 * appraisal policy, verifyEvidence and appraise.
 */
import { readFile } from 'node:fs/promises';
import { AttexError } from '../errors/index.ts';
import { decodeEvidencePackage, loadTrustStore, verifyEvidence } from '../attestation/evidence/index.ts';
import { appraise, loadPolicy, type AppraisalPolicy } from '../attestation/appraisal/index.ts';
import type { AmdRootSet, IntelRoot, TrustStore } from '../attestation/types.ts';
import { createEvidenceVerifier, type EvidenceVerifier } from './verifier.ts';

export interface VerifierConfig {
  /** Appraisal policy: a parsed document or the path of a JSON file. */
  readonly policy: unknown;
  readonly policyFile?: string;
  readonly allowSimulated: boolean;
  readonly rootsDir?: string;
  readonly extraAmd?: readonly AmdRootSet[];
  readonly extraIntel?: readonly IntelRoot[];
}

export async function loadBrokerVerifier(c: VerifierConfig): Promise<{ verifier: EvidenceVerifier; trust: TrustStore; policy: AppraisalPolicy }> {
  let source = c.policy;
  if (c.policyFile !== undefined) {
    try {
      source = JSON.parse(await readFile(c.policyFile, 'utf8'));
    } catch (err) {
      throw new AttexError('policy.invalid', `cannot read the appraisal policy ${c.policyFile}: ${err instanceof SyntaxError ? 'not JSON' : ((err as NodeJS.ErrnoException).code ?? 'error')}`);
    }
  }
  const policy = loadPolicy(source);
  const trust = await loadTrustStore({
    ...(c.rootsDir === undefined ? {} : { rootsDir: c.rootsDir }),
    ...(c.extraAmd === undefined ? {} : { extraAmd: c.extraAmd }),
    ...(c.extraIntel === undefined ? {} : { extraIntel: c.extraIntel }),
    allowSimulated: c.allowSimulated,
  });
  const verifier = createEvidenceVerifier({ trust, policy, decodeEvidencePackage, verifyEvidence, appraise });
  return { verifier, trust, policy };
}
