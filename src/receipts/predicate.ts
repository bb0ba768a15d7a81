/**
 * Schema validation of the project's predicates, with the JSON Schemas shipped in ./schema
 * (documented in docs/receipt.md). Validators are compiled once, on first use.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { AttexError } from '../errors/index.ts';
import { ATTESTATION_RECORD_PREDICATE_TYPE, type AttestationRecordPredicate } from './attestation-record.ts';
import { EXECUTION_PREDICATE_TYPE, type ExecutionPredicate } from './execution.ts';
import recordSchema from './schema/attestation-record-v1.json' with { type: 'json' };
import executionSchema from './schema/execution-v1.json' with { type: 'json' };
import type { Statement } from './statement.ts';

let validators: Map<string, ValidateFunction> | undefined;

function validatorFor(predicateType: string): ValidateFunction | undefined {
  if (validators === undefined) {
    const ajv = new Ajv({ allErrors: false, strict: true, validateFormats: false });
    validators = new Map([
      [EXECUTION_PREDICATE_TYPE, ajv.compile(executionSchema)],
      [ATTESTATION_RECORD_PREDICATE_TYPE, ajv.compile(recordSchema)],
    ]);
  }
  return validators.get(predicateType);
}

/** Check a predicate against the schema of its type; throws AttexError `receipt.predicate`. */
export function validatePredicate(predicateType: string, predicate: unknown): void {
  const validate = validatorFor(predicateType);
  if (validate === undefined) throw new AttexError('receipt.predicate', `unknown predicateType ${JSON.stringify(predicateType.slice(0, 120))}`);
  if (!validate(predicate)) {
    const e = validate.errors?.[0];
    const where = e === undefined ? '' : `${e.instancePath || '/'}: ${e.message ?? 'invalid'}`;
    throw new AttexError('receipt.predicate', `predicate does not match ${predicateType}: ${where}`);
  }
}

/** Narrow a parsed Statement to an execution receipt (type + schema). */
export function asExecutionStatement(statement: Statement): Statement<ExecutionPredicate> {
  if (statement.predicateType !== EXECUTION_PREDICATE_TYPE) {
    throw new AttexError('receipt.predicate', `predicateType is not ${EXECUTION_PREDICATE_TYPE}`);
  }
  validatePredicate(EXECUTION_PREDICATE_TYPE, statement.predicate);
  return statement as Statement<ExecutionPredicate>;
}

/** Narrow a parsed Statement to an attestation record (type + schema). */
export function asAttestationRecordStatement(statement: Statement): Statement<AttestationRecordPredicate> {
  if (statement.predicateType !== ATTESTATION_RECORD_PREDICATE_TYPE) {
    throw new AttexError('receipt.predicate', `predicateType is not ${ATTESTATION_RECORD_PREDICATE_TYPE}`);
  }
  validatePredicate(ATTESTATION_RECORD_PREDICATE_TYPE, statement.predicate);
  return statement as Statement<AttestationRecordPredicate>;
}
