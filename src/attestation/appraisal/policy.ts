/**
 * Appraisal policies: reference values as JSON, validated against
 * attestation/policies/appraisal-policy.schema.json. Unknown keys, wrong types and impossible
 * values are refused at load with AttexError `policy.invalid` whose message names the JSON path
 * of the offending key. The digest covers the canonical JSON of the policy as written.
 */
import { Ajv, type ErrorObject } from 'ajv';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AttexError } from '../../errors/index.ts';
import { canonicalJson, sha256, toHex } from '../../util/index.ts';
import type { AmdProduct, EvidenceKind } from '../types.ts';
import { readBoundedFile, readBoundedFileSync } from '../../util/index.ts';

/** A policy is a few KB; anything far larger is not one (and /dev/zero is not read at all). */
const MAX_POLICY_FILE_BYTES = 1 << 20;

export const POLICIES_DIR = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../attestation/policies');
const SCHEMA_FILE = path.join(POLICIES_DIR, 'appraisal-policy.schema.json');
const MAX_POLICY_BYTES = 1024 * 1024;
const DEBUG_BIT = 19;

export interface TcbFloor {
  readonly fmc?: number;
  readonly bl?: number;
  readonly tee?: number;
  readonly snp?: number;
  readonly ucode?: number;
}

export interface AppraisalPolicy {
  readonly id: string;
  readonly description?: string;
  readonly evidenceKinds: readonly EvidenceKind[];
  readonly allowSimulated: boolean;
  readonly allowDebug: boolean;
  readonly snp: {
    readonly measurements?: readonly string[];
    readonly hostData?: readonly string[];
    readonly allowedVmpls: readonly number[];
    readonly minTcb?: Partial<Record<AmdProduct, TcbFloor>>;
    readonly requiredPolicyBits: readonly number[];
    readonly forbiddenPolicyBits: readonly number[];
  };
  readonly tdx: {
    readonly mrTd?: readonly string[];
    readonly mrConfigId?: readonly string[];
    readonly rtmr0?: readonly string[];
    readonly rtmr1?: readonly string[];
    readonly rtmr2?: readonly string[];
    readonly rtmr3?: readonly string[];
    readonly acceptableTcbStatuses: readonly string[];
    readonly requireSeptVeDisable: boolean;
    /** Collateral items the TDX verdict must have checked (fields.collateral_checked). */
    readonly requiredCollateral: readonly string[];
  };
  /** Lowercase hex SHA-256 of the canonical JSON of the policy document as written. */
  readonly digest: string;
}

let validator: ReturnType<Ajv['compile']> | undefined;

function validate(doc: unknown): readonly ErrorObject[] {
  if (!validator) {
    const ajv = new Ajv({ allErrors: false, strict: true });
    validator = ajv.compile(JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as object);
  }
  return validator(doc) ? [] : (validator.errors ?? []);
}

/** JSON Pointer ("/snp/allowedVmpls/0") to a JSON path ("$.snp.allowedVmpls[0]"). */
function jsonPath(pointer: string, extraKey?: string): string {
  const parts = pointer === '' ? [] : pointer.slice(1).split('/').map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
  if (extraKey !== undefined) parts.push(extraKey);
  return `$${parts.map((p) => (/^\d+$/.test(p) ? `[${p}]` : /^[A-Za-z_$][\w$-]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`)).join('')}`;
}

function invalid(where: string, message: string): AttexError {
  return new AttexError('policy.invalid', `appraisal policy: ${where}: ${message}`, { details: { path: where } });
}

function describe(err: ErrorObject): AttexError {
  if (err.keyword === 'additionalProperties') {
    const key = String((err.params as { additionalProperty: string }).additionalProperty);
    return invalid(jsonPath(err.instancePath, key), 'unknown key');
  }
  if (err.keyword === 'required') {
    const key = String((err.params as { missingProperty: string }).missingProperty);
    return invalid(jsonPath(err.instancePath, key), 'required key is missing');
  }
  return invalid(jsonPath(err.instancePath), err.message ?? err.keyword);
}

function parseText(text: string): unknown {
  if (text.length > MAX_POLICY_BYTES) throw invalid('$', `larger than ${MAX_POLICY_BYTES} bytes`);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw invalid('$', `not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
}

/**
 * Validate a policy. `source` is a parsed JSON value, JSON text (a string starting with "{"), or
 * a file path (read synchronously; prefer `loadPolicyFile` in async code).
 */
export function loadPolicy(source: unknown): AppraisalPolicy {
  let doc = source;
  if (typeof source === 'string') {
    if (source.trimStart().startsWith('{')) doc = parseText(source);
    else {
      let text: string;
      try {
        text = readBoundedFileSync(source, MAX_POLICY_FILE_BYTES).toString('utf8');
      } catch (err) {
        throw new AttexError('policy.unreadable', `cannot read appraisal policy ${source}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
      }
      doc = parseText(text);
    }
  }
  const errors = validate(doc);
  if (errors.length > 0) throw describe(errors[0]!);
  const p = doc as Record<string, any>;
  const snp = (p['snp'] ?? {}) as Record<string, any>;
  const tdx = (p['tdx'] ?? {}) as Record<string, any>;
  const required: number[] = snp['requiredPolicyBits'] ?? [];
  const forbidden: number[] = snp['forbiddenPolicyBits'] ?? [];
  const allowDebug: boolean = p['allowDebug'] ?? false;
  // Contradictions the schema cannot express are impossible values too.
  required.forEach((bit, i) => {
    if (forbidden.includes(bit)) throw invalid(`$.snp.requiredPolicyBits[${i}]`, `bit ${bit} is also in forbiddenPolicyBits`);
    if (bit === DEBUG_BIT && !allowDebug) throw invalid(`$.snp.requiredPolicyBits[${i}]`, 'requires DEBUG (bit 19) but allowDebug is false');
  });
  if (snp['minTcb']?.['Milan']?.['fmc'] !== undefined) throw invalid('$.snp.minTcb.Milan.fmc', 'fmc exists on Turin only');
  if (snp['minTcb']?.['Genoa']?.['fmc'] !== undefined) throw invalid('$.snp.minTcb.Genoa.fmc', 'fmc exists on Turin only');
  const { $schema: _schema, ...forDigest } = p;
  return {
    id: p['id'],
    ...(p['description'] !== undefined && { description: p['description'] }),
    evidenceKinds: p['evidenceKinds'],
    allowSimulated: p['allowSimulated'],
    allowDebug,
    snp: {
      ...(snp['measurements'] && { measurements: snp['measurements'] }),
      ...(snp['hostData'] && { hostData: snp['hostData'] }),
      allowedVmpls: snp['allowedVmpls'] ?? [0],
      ...(snp['minTcb'] && { minTcb: snp['minTcb'] }),
      requiredPolicyBits: required,
      forbiddenPolicyBits: forbidden,
    },
    tdx: {
      ...Object.fromEntries(['mrTd', 'mrConfigId', 'rtmr0', 'rtmr1', 'rtmr2', 'rtmr3'].filter((k) => tdx[k] !== undefined).map((k) => [k, tdx[k]])),
      acceptableTcbStatuses: tdx['acceptableTcbStatuses'] ?? ['UpToDate'],
      requireSeptVeDisable: tdx['requireSeptVeDisable'] ?? true,
      requiredCollateral: tdx['requiredCollateral'] ?? ['tcb_info'],
    },
    digest: toHex(sha256(canonicalJson(forDigest))),
  };
}

export async function loadPolicyFile(file: string): Promise<AppraisalPolicy> {
  let text: string;
  try {
    text = (await readBoundedFile(file, MAX_POLICY_FILE_BYTES)).toString('utf8');
  } catch (err) {
    throw new AttexError('policy.unreadable', `cannot read appraisal policy ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  return loadPolicy(parseText(text));
}

/** The policies shipped in attestation/policies: 'default' (strict) or 'dev-simulated'. */
export function builtinPolicy(name: 'default' | 'dev-simulated'): AppraisalPolicy {
  return loadPolicy(path.join(POLICIES_DIR, `${name}.json`));
}
