/**
 * Wires the real attestation modules into the broker's EvidenceVerifier: the trust store
 * (vendor roots, plus the simulated TEE's roots when simulated evidence is allowed), the
 * appraisal policy, verifyEvidence and appraise.
 */
import { readFile } from 'node:fs/promises';
import { AttexError } from '../errors/index.ts';
import { decodeEvidencePackage, loadTrustStore, verifyEvidence } from '../attestation/evidence/index.ts';
import type { AmdRootSet, IntelRoot, TrustStore, VerificationResult } from '../attestation/types.ts';
import { createEvidenceVerifier, type BrokerAppraisal, type EvidenceVerifier } from './verifier.ts';

interface AppraisalModule {
  loadPolicy(source: unknown): unknown;
  appraise(result: VerificationResult, policy: unknown, expected?: { reportData?: Uint8Array }): BrokerAppraisal;
}

// Seam: bound late so the broker builds while src/attestation/appraisal is being written.
const APPRAISAL_MODULE = '../attestation/appraisal/index.ts';

export async function loadAppraisal(): Promise<AppraisalModule> {
  try {
    return (await import(APPRAISAL_MODULE)) as AppraisalModule;
  } catch (err) {
    throw new AttexError('broker.appraisal-unavailable', 'the appraisal module (src/attestation/appraisal) is not available', { cause: err });
  }
}

export interface VerifierConfig {
  /** Appraisal policy: a parsed document or the path of a JSON file. */
  readonly policy: unknown;
  readonly policyFile?: string;
  readonly allowSimulated: boolean;
  readonly rootsDir?: string;
  readonly extraAmd?: readonly AmdRootSet[];
  readonly extraIntel?: readonly IntelRoot[];
}

export async function loadBrokerVerifier(c: VerifierConfig): Promise<{ verifier: EvidenceVerifier; trust: TrustStore; policy: unknown }> {
  const appraisal = await loadAppraisal();
  let source = c.policy;
  if (c.policyFile !== undefined) {
    try {
      source = JSON.parse(await readFile(c.policyFile, 'utf8'));
    } catch (err) {
      throw new AttexError('policy.invalid', `cannot read the appraisal policy ${c.policyFile}: ${err instanceof SyntaxError ? 'not JSON' : ((err as NodeJS.ErrnoException).code ?? 'error')}`);
    }
  }
  const policy = appraisal.loadPolicy(source);
  const trust = await loadTrustStore({
    ...(c.rootsDir === undefined ? {} : { rootsDir: c.rootsDir }),
    ...(c.extraAmd === undefined ? {} : { extraAmd: c.extraAmd }),
    ...(c.extraIntel === undefined ? {} : { extraIntel: c.extraIntel }),
    allowSimulated: c.allowSimulated,
  });
  const verifier = createEvidenceVerifier({ trust, policy, decodeEvidencePackage, verifyEvidence, appraise: appraisal.appraise });
  return { verifier, trust, policy };
}
