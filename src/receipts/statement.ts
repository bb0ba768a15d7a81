/**
 * in-toto Statement v1 (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md):
 * encoding (canonical JSON, so a statement has one byte form) and the structural checks every
 * verifier applies before looking at the predicate. Portable.
 */
import { AttexError } from '../errors/index.ts';
import { canonicalJsonFast } from './canonical.ts';
import { IN_TOTO_PAYLOAD_TYPE, isPlainObject } from './dsse.ts';
import { StrictJsonError, parseStrictJson } from './strict-json.ts';

export const STATEMENT_TYPE_V1 = 'https://in-toto.io/Statement/v1';

export interface ResourceDescriptor {
  readonly name?: string;
  readonly digest: Readonly<Record<string, string>>;
}

export interface Statement<P = unknown> {
  readonly _type: typeof STATEMENT_TYPE_V1;
  readonly subject: readonly ResourceDescriptor[];
  readonly predicateType: string;
  readonly predicate: P;
}

const encoder = new TextEncoder();

export function encodeStatement(statement: Statement): Uint8Array {
  return encoder.encode(canonicalJsonFast(statement));
}

/**
 * Parse a verified DSSE payload as a Statement v1: payloadType, `_type`, a non-empty subject
 * list whose members each carry a non-empty digest, a non-empty predicateType. Throws
 * AttexError `receipt.statement`.
 */
export function parseStatement(payloadType: string, payload: Uint8Array): Statement {
  const fail = (why: string): never => {
    throw new AttexError('receipt.statement', `not an in-toto Statement v1: ${why}`);
  };
  if (payloadType !== IN_TOTO_PAYLOAD_TYPE) fail(`payloadType is ${JSON.stringify(payloadType.slice(0, 80))}, not ${IN_TOTO_PAYLOAD_TYPE}`);
  let json: unknown;
  try {
    json = parseStrictJson(payload);
  } catch (err) {
    return fail(`payload is not valid JSON (${err instanceof StrictJsonError ? err.message : 'parse error'})`);
  }
  if (!isPlainObject(json)) return fail('payload is not a JSON object');
  if (json._type !== STATEMENT_TYPE_V1) fail('_type is not https://in-toto.io/Statement/v1');
  const subject = json.subject;
  if (!Array.isArray(subject) || subject.length === 0) return fail('subject must be a non-empty list');
  subject.forEach((s, i) => {
    if (!isPlainObject(s) || !isPlainObject(s.digest) || Object.keys(s.digest).length === 0) fail(`subject[${i}] has no digest`);
    const digest = s.digest as Record<string, unknown>;
    for (const [alg, value] of Object.entries(digest)) {
      if (typeof value !== 'string' || value.length === 0) fail(`subject[${i}].digest.${alg} must be a non-empty string`);
    }
    if (s.name !== undefined && typeof s.name !== 'string') fail(`subject[${i}].name must be a string`);
  });
  if (typeof json.predicateType !== 'string' || json.predicateType.length === 0) fail('predicateType must be a non-empty string');
  return json as unknown as Statement;
}
