/** Sample inputs shared by the receipt and verifier tests. */
import type { ExecutionParams } from '../../src/receipts/index.ts';

export const SECRET_NAME = 'stripe-api-key';
/** A value that must never appear in any receipt. */
export const SECRET_VALUE = 'sk_live_DO_NOT_LEAK_4f2a9c1e';

export function sampleExecutionParams(signingKey: Uint8Array, overrides: Partial<ExecutionParams> = {}): ExecutionParams {
  return {
    invocationId: 'inv-0001',
    caller: {
      id: 'agent:billing-bot',
      requestSignature: {
        keyId: 'agent-key-1',
        signatureInput: 'sig1=("@method" "@path" "content-digest");created=1767225600;keyid="agent-key-1"',
        signature: 'sig1=:AAAA:',
        contentDigest: 'sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:',
      },
    },
    component: { name: 'charge-card', digest: `sha256:${'c0'.repeat(32)}` },
    input: new TextEncoder().encode('{"amount":42}'),
    output: new TextEncoder().encode('{"charged":true}'),
    outcome: 'ok',
    capabilities: {
      granted: { hosts: ['api.stripe.com'], secrets: [SECRET_NAME], kv: ['ledger'] },
      used: { hosts: ['api.stripe.com'], secrets: [SECRET_NAME], kv: [{ bucket: 'ledger', op: 'set', count: 1 }], hostCalls: 3 },
    },
    limits: { memoryBytes: 67_108_864, timeoutMs: 5_000 },
    policyDigest: 'ab'.repeat(32),
    executor: { id: 'executor-a', version: '0.1.0', signingKey },
    attestation: {
      evidenceKind: 'snp',
      tee: 'sim-snp',
      evidenceDigest: 'ef'.repeat(32),
      measurement: '11'.repeat(48),
      appraisalStatus: 'affirming',
      recordLogIndex: 0,
    },
    startedAt: new Date('2026-01-01T00:00:00.000Z'),
    finishedAt: new Date('2026-01-01T00:00:00.250Z'),
    ...overrides,
  };
}
