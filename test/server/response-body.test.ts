import { describe, expect, it } from 'vitest';
import { dispatchResponseBody } from '../../src/server/app.ts';
import type { DispatchResult } from '../../src/server/service.ts';

// A tlog-proof as the ledger writes it: its checkpoint's signature lines start with U+2014.
const proof = 'c2sp.org/tlog-proof@v1\nindex 41\nAbCd+/0=\n\nexample.attex.invalid/log\n42\nq83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0VmI=\n\n\u2014 example.attex.invalid/log Kx3vAAAA+/0=\n';
const base: DispatchResult = { invocationId: '0193a2b4-0000-7000-8000-000000000001', outcome: 'ok', output: { total: 3 }, receipt: 'eyJwYXlsb2FkIjoi', logIndex: 41, proof, replayed: false };

describe('the dispatch response body', () => {
  it('is ASCII, escaping the proof signature lines, and parses to the same result in the same member order', () => {
    const body = dispatchResponseBody(base);
    expect(body).toMatch(/^[\x20-\x7e]*$/);
    expect(body).toContain('\\n\\u2014 example.attex.invalid/log');
    expect(JSON.parse(body)).toEqual(base);
    expect(Object.keys(JSON.parse(body) as object)).toEqual(Object.keys(base));
  });

  it('escapes any non-ASCII text in the proof, astral characters as surrogate pairs', () => {
    const result = { ...base, proof: `${proof}\u00e9\u{1f600}\u007f` };
    const body = dispatchResponseBody(result);
    expect(body).toMatch(/^[\x20-\x7e]*$/);
    expect(body).toContain('\\u00e9\\ud83d\\ude00\\u007f');
    expect(JSON.parse(body)).toEqual(result);
  });

  it('keeps an action output and an error message with non-ASCII text as they are', () => {
    const result: DispatchResult = { ...base, outcome: 'error', output: { name: 'Zo\u00eb \u{1f600}' }, error: { code: 'action.failed', message: 'caf\u00e9' } };
    expect(JSON.parse(dispatchResponseBody(result))).toEqual(result);
  });
});
