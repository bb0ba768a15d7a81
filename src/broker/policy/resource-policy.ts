/**
 * Resource policy: which attested TEEs may receive which resources. JSON validated against
 * attestation/policies/resources.schema.json (unknown keys refused); evaluation is pure and
 * denies by default. A resource is released when any rule whose glob matches the path accepts
 * the attestation; otherwise the reason from the first matching rule (or "no rule") is returned.
 */
import { Ajv, type ErrorObject } from 'ajv';
import schema from '../../../attestation/policies/resources.schema.json' with { type: 'json' };
import { AttexError } from '../../errors/index.ts';
import type { EvidenceKind, TeeName } from '../../attestation/types.ts';
import { toHex, sha256, canonicalJson } from '../../util/index.ts';
import { globMatches } from '../paths.ts';

export type EarStatus = 'affirming' | 'warning' | 'contraindicated' | 'none';

export interface ResourceRule {
  readonly description?: string;
  readonly resources: readonly string[];
  readonly tees: readonly TeeName[];
  readonly evidenceKinds?: readonly EvidenceKind[];
  readonly measurements: readonly string[];
  readonly minStatus: 'affirming' | 'warning';
  readonly allowSimulated: boolean;
}

export interface ResourcePolicy {
  readonly version: 1;
  readonly id: string;
  readonly description?: string;
  readonly rules: readonly ResourceRule[];
  /** sha256:<hex> of the policy's canonical JSON, recorded in audit entries. */
  readonly digest: string;
}

/** What the broker knows about an attested requester (from its verified EAR token). */
export interface AttestedSubject {
  readonly kind: EvidenceKind;
  readonly tee: TeeName;
  readonly simulated: boolean;
  readonly measurement: string | null;
  readonly status: EarStatus;
}

export type PolicyDecision =
  | { readonly allow: true; readonly rule: number }
  | { readonly allow: false; readonly code: string; readonly message: string; readonly rule: number | null };

const ajv = new Ajv({ allErrors: true, strict: true });
const validate = ajv.compile(schema);

function describe(errors: readonly ErrorObject[] | null | undefined): string {
  const first = errors?.[0];
  if (!first) return 'invalid';
  const where = first.instancePath === '' ? '(root)' : first.instancePath;
  const extra = first.keyword === 'additionalProperties' ? ` '${String((first.params as { additionalProperty?: string }).additionalProperty)}'` : '';
  return `${where}: ${first.message ?? 'invalid'}${extra}`;
}

/** Validate a parsed policy document; throws AttexError `broker.resource-policy` naming the JSON path. */
export function loadResourcePolicy(source: unknown): ResourcePolicy {
  let doc = source;
  if (typeof source === 'string') {
    try {
      doc = JSON.parse(source);
    } catch {
      throw new AttexError('broker.resource-policy', 'resource policy is not valid JSON');
    }
  }
  if (!validate(doc)) throw new AttexError('broker.resource-policy', `resource policy invalid at ${describe(validate.errors)}`);
  const policy = doc as Omit<ResourcePolicy, 'digest'> & { $schema?: string };
  const { $schema: _schema, ...body } = policy;
  return { ...body, digest: `sha256:${toHex(sha256(canonicalJson(body)))}` };
}

const STATUS_RANK: Record<EarStatus, number> = { affirming: 3, warning: 2, contraindicated: 1, none: 0 };

function ruleDecision(rule: ResourceRule, s: AttestedSubject): { code: string; message: string } | null {
  if (s.simulated && !rule.allowSimulated) return { code: 'broker.policy.simulated', message: 'the rule does not release to simulated TEEs' };
  if (!rule.tees.includes(s.tee)) return { code: 'broker.policy.tee', message: `TEE ${s.tee} is not allowed by the rule` };
  if (rule.evidenceKinds !== undefined && !rule.evidenceKinds.includes(s.kind)) {
    return { code: 'broker.policy.evidence-kind', message: `evidence kind ${s.kind} is not allowed by the rule` };
  }
  if (s.measurement === null || !rule.measurements.includes(s.measurement.toLowerCase())) {
    return { code: 'broker.policy.measurement', message: 'the launch measurement is not one the rule accepts' };
  }
  if (STATUS_RANK[s.status] < STATUS_RANK[rule.minStatus]) {
    return { code: 'broker.policy.status', message: `appraisal status ${s.status} is weaker than the rule's minimum ${rule.minStatus}` };
  }
  return null;
}

export function evaluateResourcePolicy(policy: ResourcePolicy, resourcePath: string, subject: AttestedSubject): PolicyDecision {
  let firstDenial: { code: string; message: string; rule: number } | null = null;
  for (const [i, rule] of policy.rules.entries()) {
    if (!rule.resources.some((g) => globMatches(g, resourcePath))) continue;
    const denial = ruleDecision(rule, subject);
    if (denial === null) return { allow: true, rule: i };
    firstDenial ??= { ...denial, rule: i };
  }
  return firstDenial !== null
    ? { allow: false, ...firstDenial }
    : { allow: false, code: 'broker.policy.no-rule', message: 'no rule covers this resource', rule: null };
}
