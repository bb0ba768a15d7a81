/**
 * Route schemas: they validate requests and generate the OpenAPI document (served at
 * /openapi.json and kept in docs/openapi.json; a test keeps the two identical).
 */
export const OPENAPI_INFO = {
  title: 'attex executor',
  version: '1',
  description:
    'Dispatch actions to capability-scoped WebAssembly components running in an attested TEE. Every execution returns a signed receipt and its inclusion proof in the executor\'s transparency log.',
};

const problem = {
  type: 'object',
  description: 'RFC 7807 problem details; `code` is the stable error code (see docs/errors.md).',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string' },
    instance: { type: 'string' },
  },
  required: ['type', 'title', 'status', 'detail', 'code'],
} as const;

const dispatchResult = {
  type: 'object',
  properties: {
    invocationId: { type: 'string' },
    outcome: { type: 'string', enum: ['ok', 'error'] },
    output: {},
    error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } },
    receipt: { type: 'string', description: 'base64 of the exact DSSE envelope bytes (the log entry)' },
    logIndex: { type: 'integer' },
    proof: { type: 'string', description: 'c2sp.org/tlog-proof@v1 text' },
    replayed: { type: 'boolean' },
  },
  required: ['invocationId', 'outcome', 'receipt', 'logIndex', 'proof', 'replayed'],
} as const;

const errors = { 400: problem, 401: problem, 403: problem, 404: problem, 409: problem, 413: problem, 415: problem, 429: problem, 500: problem, 503: problem };

export const routeSchemas = {
  dispatch: {
    summary: 'Run an action synchronously',
    description:
      'The body is the action input (JSON). Requests are signed with HTTP Message Signatures (RFC 9421) over @method, @path, @query and content-digest, with created, keyid, alg="ed25519" and nonce parameters.',
    // Lengths and patterns are checked by the handler after authentication (a schema check
    // would answer an unsigned request before it is refused as unsigned); described here.
    params: { type: 'object', properties: { name: { type: 'string', description: '1-63 characters: a-z, 0-9 and -, starting with a letter or digit' } }, required: ['name'] },
    headers: {
      type: 'object',
      properties: {
        'idempotency-key': { type: 'string', description: '1-128 characters: A-Z a-z 0-9 . _ : -' },
        'content-digest': { type: 'string' },
        'signature-input': { type: 'string' },
        signature: { type: 'string' },
      },
    },
    // 500 carries a receipt when the sandbox worker crashed mid-action, a problem otherwise.
    response: { ...errors, 200: dispatchResult, 422: dispatchResult, 500: { anyOf: [dispatchResult, problem] } },
  },
  receipt: {
    summary: 'A receipt bundle, ready for `attex verify`',
    params: { type: 'object', properties: { id: { type: 'string', description: 'the invocation id (8-64 characters: A-Z a-z 0-9 -)' } }, required: ['id'] },
    response: { 200: { type: 'object', additionalProperties: true }, 404: problem },
  },
  attestation: {
    summary: "The executor's attestation record: evidence, collateral, public keys and the broker's token",
    response: { 200: { type: 'object', additionalProperties: true }, 503: problem },
  },
  checkpoint: { summary: 'The latest log checkpoint (C2SP signed note)', response: { 200: { type: 'string' } } },
  tile: { summary: 'A C2SP tlog-tiles tile or entry bundle', response: { 404: problem } },
  health: { summary: 'Liveness', response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } },
  ready: {
    summary: 'Readiness: attested, secrets loaded and components compiled',
    response: {
      200: { type: 'object', properties: { ready: { type: 'boolean' }, checks: { type: 'object', additionalProperties: { type: 'boolean' } } } },
      503: { type: 'object', properties: { ready: { type: 'boolean' }, checks: { type: 'object', additionalProperties: { type: 'boolean' } } } },
    },
  },
  metrics: { summary: 'Prometheus metrics (text exposition format)' },
} as const;
