/** Appraisal: reference-value policies and EAR-style verdicts over verified evidence. */
export { type Appraisal, appraise } from './appraise.ts';
export { type AppraisalPolicy, builtinPolicy, loadPolicy, loadPolicyFile, POLICIES_DIR, type TcbFloor } from './policy.ts';
export { AR4SI, type AppraisalStatus, statusOf, tierOf, TRUST_CLAIMS, type TrustClaim, type TrustworthinessVector } from './ear.ts';
