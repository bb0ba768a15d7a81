/**
 * The key broker: a Trustee KBS (RCAR v0.4.0) server that releases secrets only to attested
 * TEEs, its encrypted secret store, resource policy and audit log, and the executor-side client.
 * Protocol shapes: docs/kbs-protocol.md; operation: docs/broker.md.
 */
export { createBrokerServer, createBrokerLogger, readSessionCookie, LOG_REDACT_PATHS, type BrokerServer, type BrokerServerOptions } from './server.ts';
export { openBroker, openAuditLedger, brokerPaths, AUDIT_LOG_NAME, type OpenBrokerOptions, type OpenedBroker } from './open.ts';
export { loadBrokerVerifier, type VerifierConfig } from './wiring.ts';
export { createEvidenceVerifier, type EvidenceVerifier, type EvidenceVerifierParts, type BrokerAppraisal } from './verifier.ts';
export { BrokerProblem, PROBLEMS, TRUSTEE_ERROR_PREFIX, problemBody, type ProblemBody, type ProblemName } from './problems.ts';
export {
  KBS_PROTOCOL_VERSION,
  KBS_SESSION_COOKIE,
  SUPPORTED_TEES,
  type KbsRequest,
  type KbsChallenge,
  type KbsAttestation,
  type KbsResponse,
  type KbsTokenResponse,
  type RuntimeData,
  type TeePubKey,
} from './protocol.ts';
export { parseResourcePath, formatResourcePath, globMatches, type ResourcePath } from './paths.ts';
export { loadResourcePolicy, evaluateResourcePolicy, type ResourcePolicy, type ResourceRule, type AttestedSubject, type PolicyDecision } from './policy/index.ts';
export { openSecretStore, loadOperatorKey, parseOperatorKey, type SecretStore } from './store/index.ts';
export { createAuditLog, loadOrCreateAuditSigner, AUDIT_PAYLOAD_TYPE, AUDIT_ENTRY_TYPE, type AuditLog, type AuditLedger, type AuditEntry, type AuditEvent } from './audit.ts';
export { loadOrCreateTokenKey, issueEarToken, verifyEarToken, jwks, EAR_PROFILE, JWKS_PATH, type TokenKey, type EarClaims, type EarSubmod } from './token.ts';
export { encryptToTee, decryptFromBroker } from './jwe.ts';
export { attestAndFetch, openBrokerSession, BrokerCallError, type AttestedBrokerSession, type AttestAndFetchOptions, type BrokerSession, type EvidenceProvider, type SecretSource } from './client/index.ts';
