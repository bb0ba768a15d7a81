export {
  loadResourcePolicy,
  evaluateResourcePolicy,
  type ResourcePolicy,
  type ResourceRule,
  type AttestedSubject,
  type PolicyDecision,
  type EarStatus,
} from './resource-policy.ts';
