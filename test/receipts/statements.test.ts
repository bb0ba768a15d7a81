import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AttexError } from '../../src/errors/index.ts';
import {
  ATTESTATION_RECORD_PREDICATE_TYPE,
  EXECUTION_PREDICATE_TYPE,
  asAttestationRecordStatement,
  asExecutionStatement,
  buildAttestationRecordStatement,
  buildExecutionStatement,
  createReceiptSigner,
  encodeBase64,
  executorRuntimeData,
  parseStatement,
  signStatement,
  validatePredicate,
  verifyDsse,
} from '../../src/receipts/index.ts';
import { SECRET_NAME, SECRET_VALUE, sampleExecutionParams } from './helpers.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const schemaPath = path.resolve(here, '../../src/receipts/schema/execution-v1.json');
const dec = new TextDecoder();

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return err instanceof AttexError ? err.code : `non-AttexError: ${String(err)}`;
  }
  return 'no error';
}

const teeJwk = { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' };

describe('execution receipt statement', () => {
  const signer = createReceiptSigner();

  it('builds a Statement v1 whose subject is the output digest and whose predicate matches the schema', () => {
    const st = buildExecutionStatement(sampleExecutionParams(signer.publicKeyRaw));
    expect(st._type).toBe('https://in-toto.io/Statement/v1');
    expect(st.predicateType).toBe(EXECUTION_PREDICATE_TYPE);
    const outputDigest = createHash('sha256').update('{"charged":true}').digest('hex');
    expect(st.subject).toEqual([{ name: 'output', digest: { sha256: outputDigest } }]);
    expect(st.predicate.output.digest.sha256).toBe(outputDigest);
    expect(st.predicate.input.digest.sha256).toBe(createHash('sha256').update('{"amount":42}').digest('hex'));
    expect(st.predicate.input.bytes).toBe(13);
    expect(st.predicate.component.digest).toEqual({ sha256: 'c0'.repeat(32) });
    expect(st.predicate.executor.keyId).toBe(signer.keyId);
    expect(st.predicate.executor.signingKey).toBe(encodeBase64(signer.publicKeyRaw));
    expect(st.predicate.startedAt).toBe('2026-01-01T00:00:00.000Z');
    expect(st.predicate.input.content).toBeUndefined();
    expect(st.predicate.output.content).toBeUndefined();
    validatePredicate(EXECUTION_PREDICATE_TYPE, st.predicate);
  });

  it('is pure: the same inputs give the same envelope payload', () => {
    const a = verifyDsse(signStatement(buildExecutionStatement(sampleExecutionParams(signer.publicKeyRaw)), signer), signer.publicKeyRaw);
    const b = verifyDsse(signStatement(buildExecutionStatement(sampleExecutionParams(signer.publicKeyRaw)), signer), signer.publicKeyRaw);
    expect(a.payload).toEqual(b.payload);
    const parsed = asExecutionStatement(parseStatement(a.payloadType, a.payload));
    expect(parsed.predicate.invocationId).toBe('inv-0001');
  });

  it('includes raw input/output only when asked', () => {
    const st = buildExecutionStatement(sampleExecutionParams(signer.publicKeyRaw), { includeInput: true, includeOutput: true });
    expect(Buffer.from(st.predicate.input.content!, 'base64').toString()).toBe('{"amount":42}');
    expect(Buffer.from(st.predicate.output.content!, 'base64').toString()).toBe('{"charged":true}');
    validatePredicate(EXECUTION_PREDICATE_TYPE, st.predicate);
  });

  it('never carries a secret value: extra members are dropped and the schema has no place for one', () => {
    const params = sampleExecutionParams(signer.publicKeyRaw) as unknown as Record<string, unknown>;
    // Smuggle the value everywhere a careless caller might put it.
    const poisoned = {
      ...params,
      secrets: { [SECRET_NAME]: SECRET_VALUE },
      secretValues: [SECRET_VALUE],
      capabilities: {
        granted: { ...(params.capabilities as any).granted, values: { [SECRET_NAME]: SECRET_VALUE } },
        used: { ...(params.capabilities as any).used, secretValues: [SECRET_VALUE], secretMap: { [SECRET_NAME]: SECRET_VALUE } },
      },
      caller: { ...(params.caller as any), token: SECRET_VALUE },
      executor: { ...(params.executor as any), privateKey: SECRET_VALUE },
      attestation: { ...(params.attestation as any), brokerSecret: SECRET_VALUE },
    };
    const env = signStatement(buildExecutionStatement(poisoned as any), signer);
    const text = dec.decode(env) + dec.decode(verifyDsse(env, signer.publicKeyRaw).payload);
    expect(text).not.toContain(SECRET_VALUE);
    expect(text).not.toContain(Buffer.from(SECRET_VALUE).toString('base64').slice(0, 20));
    expect(dec.decode(verifyDsse(env, signer.publicKeyRaw).payload)).toContain(SECRET_NAME);

    // Structurally: every object in the schema is closed, and secrets are lists of names.
    const schema = JSON.parse(readFileSync(schemaPath, 'utf8'));
    const open: string[] = [];
    const walk = (node: unknown, at: string) => {
      if (typeof node !== 'object' || node === null) return;
      const n = node as Record<string, unknown>;
      if (n.type === 'object' && n.additionalProperties !== false && at !== '/properties/limits') open.push(at);
      for (const [k, v] of Object.entries(n)) walk(v, `${at}/${k}`);
    };
    walk(schema, '');
    expect(open).toEqual([]);
    const limits = schema.properties.limits;
    expect(limits.additionalProperties).toEqual({ $ref: '#/definitions/count' }); // numbers only
    for (const where of [schema.properties.capabilities.properties.granted, schema.properties.capabilities.properties.used]) {
      expect(where.properties.secrets).toEqual({ $ref: '#/definitions/nameList' });
    }
    expect(schema.definitions.nameList.items).toEqual({ $ref: '#/definitions/name' });
    // A predicate with a value field fails validation.
    const st = buildExecutionStatement(sampleExecutionParams(signer.publicKeyRaw));
    const withValue = { ...st.predicate, capabilities: { ...st.predicate.capabilities, used: { ...st.predicate.capabilities.used, secretValues: [SECRET_VALUE] } } };
    expect(code(() => validatePredicate(EXECUTION_PREDICATE_TYPE, withValue))).toBe('receipt.predicate');
  });

  it('rejects invalid parameters with receipt.invalid', () => {
    const k = signer.publicKeyRaw;
    const bad: [string, Parameters<typeof sampleExecutionParams>[1]][] = [
      ['error without code', { outcome: 'error' }],
      ['bad digest', { component: { name: 'x', digest: 'md5:abc' } }],
      ['bad time', { startedAt: new Date('nope') }],
      ['finished before started', { finishedAt: new Date('2025-12-31T00:00:00Z') }],
      ['secret name with a space', { capabilities: { granted: { hosts: [], secrets: ['a b'], kv: [] }, used: { hosts: [], secrets: [], kv: [], hostCalls: 0 } } }],
      ['negative count', { capabilities: { granted: { hosts: [], secrets: [], kv: [] }, used: { hosts: [], secrets: [], kv: [], hostCalls: -1 } } }],
      ['bad limit', { limits: { 'Memory Bytes': 1 } }],
      ['bad tee', { attestation: { ...sampleExecutionParams(k).attestation, tee: 'sgx' as never } }],
      ['short key', { executor: { id: 'e', version: '1', signingKey: new Uint8Array(31) } }],
    ];
    for (const [name, o] of bad) expect(code(() => buildExecutionStatement(sampleExecutionParams(k, o))), name).toBe('receipt.invalid');
    expect(buildExecutionStatement(sampleExecutionParams(k, { outcome: 'error', errorCode: 'sandbox.timeout' })).predicate.errorCode).toBe('sandbox.timeout');
  });
});

describe('attestation record statement', () => {
  const signer = createReceiptSigner();
  const evidenceBytes = new Uint8Array(1184).fill(7);

  it('binds the receipt key and TEE key in runtimeData and hashes the evidence into the subject', () => {
    const st = buildAttestationRecordStatement({
      executor: { id: 'executor-a', version: '0.1.0' },
      receiptKey: signer.publicKeyRaw,
      teePublicKey: teeJwk,
      nonce: 'bm9uY2U',
      evidence: { kind: 'snp', evidence: encodeBase64(evidenceBytes), certs: [encodeBase64(new Uint8Array([1, 2, 3]))] },
      appraisal: { status: 'affirming', tee: 'sim-snp', policyId: 'default', policyDigest: `sha256:${'aa'.repeat(32)}` },
      createdAt: new Date('2026-01-01T00:00:00Z'),
    });
    expect(st.predicateType).toBe(ATTESTATION_RECORD_PREDICATE_TYPE);
    expect(st.subject[0]!.digest.sha256).toBe(createHash('sha256').update(evidenceBytes).digest('hex'));
    expect(st.predicate.runtimeData).toEqual(executorRuntimeData('bm9uY2U', teeJwk, signer.publicKeyRaw));
    expect(st.predicate.runtimeData['attex-receipt-key']).toBe(encodeBase64(signer.publicKeyRaw));
    expect(st.predicate.keys.receiptKey).toBe(encodeBase64(signer.publicKeyRaw));
    const env = signStatement(st, signer);
    const v = verifyDsse(env, signer.publicKeyRaw);
    expect(asAttestationRecordStatement(parseStatement(v.payloadType, v.payload)).predicate.createdAt).toBe('2026-01-01T00:00:00.000Z');
  });

  it('refuses a private JWK, bad evidence base64 and a bad token', () => {
    const base = {
      executor: { id: 'executor-a', version: '0.1.0' },
      receiptKey: signer.publicKeyRaw,
      teePublicKey: teeJwk,
      nonce: 'n',
      evidence: { kind: 'snp' as const, evidence: encodeBase64(evidenceBytes) },
      createdAt: new Date(0),
    };
    expect(code(() => buildAttestationRecordStatement({ ...base, teePublicKey: { ...teeJwk, d: 'secret' } }))).toBe('receipt.invalid');
    expect(code(() => buildAttestationRecordStatement({ ...base, evidence: { kind: 'snp', evidence: '!!' } }))).toBe('receipt.invalid');
    expect(code(() => buildAttestationRecordStatement({ ...base, brokerToken: 'not a jwt' }))).toBe('receipt.invalid');
    const st = buildAttestationRecordStatement(base);
    expect(code(() => validatePredicate(ATTESTATION_RECORD_PREDICATE_TYPE, { ...st.predicate, keys: { ...st.predicate.keys, teePublicKey: { ...teeJwk, d: 'x' } } }))).toBe('receipt.predicate');
  });

  it('rejects payloads that are not Statement v1 with receipt.statement', () => {
    const enc = new TextEncoder();
    expect(code(() => parseStatement('application/json', enc.encode('{}')))).toBe('receipt.statement');
    expect(code(() => parseStatement('application/vnd.in-toto+json', enc.encode('{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"digest":{"sha256":"a"}}],"predicateType":"x"}')))).toBe('receipt.statement');
    expect(code(() => parseStatement('application/vnd.in-toto+json', enc.encode('{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x"}')))).toBe('receipt.statement');
    expect(code(() => parseStatement('application/vnd.in-toto+json', enc.encode('{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{}}],"predicateType":"x"}')))).toBe('receipt.statement');
    expect(code(() => parseStatement('application/vnd.in-toto+json', enc.encode('{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"a"}}],"predicateType":""}')))).toBe('receipt.statement');
    expect(code(() => asExecutionStatement(parseStatement('application/vnd.in-toto+json', enc.encode('{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"a"}}],"predicateType":"https://attex.dev/receipt/execution/v1","predicate":{}}'))))).toBe('receipt.predicate');
  });
});
