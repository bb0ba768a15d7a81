import { describe, expect, it } from 'vitest';
import { canonicalJsonFast } from '../../src/receipts/canonical.ts';
import { buildExecutionStatement, createReceiptSigner, encodeStatement, signStatement, parseDsse } from '../../src/receipts/index.ts';
import { canonicalJson } from '../../src/util/index.ts';
import { sampleExecutionParams } from './helpers.ts';

describe('canonicalJsonFast', () => {
  it('gives exactly canonicalJson bytes for sorted, unsorted and unusual values', () => {
    const values: unknown[] = [
      { a: 1, b: [1, 'x', null, true], c: { d: 'é\u2028"\\\n', e: -0 } },
      { b: 1, a: 2 }, // unsorted: general encoder
      { a: undefined, b: 1 }, // undefined member dropped, as canonicalJson does
      { '10': 1, '9': 2, a: 3 }, // integer-like keys (enumerated first by JS)
      { a: { z: 1, y: { x: [ { q: 1, p: 2 } ] } } },
      { A: 1, _: 2, a: 3, é: 4, '\ud83d\ude00': 5, '\uffff': 6 },
      [],
      {},
      'plain',
      1e21,
      Object.assign(Object.create(null) as object, { b: 1, c: 2 }),
    ];
    for (const v of values) expect(canonicalJsonFast(v)).toBe(canonicalJson(v));
  });

  it('refuses what canonicalJson refuses instead of letting JSON.stringify invent a form', () => {
    expect(() => canonicalJsonFast({ a: Number.NaN })).toThrow(TypeError);
    expect(() => canonicalJsonFast([undefined])).toThrow(TypeError);
    expect(() => canonicalJsonFast({ a: 1n })).toThrow(TypeError);
    // A Date is an object with no own keys for canonicalJson, never JSON.stringify's ISO string.
    expect(canonicalJsonFast({ d: new Date(0) })).toBe('{"d":{}}');
    expect(() => canonicalJsonFast({ t: { toJSON: () => 'x' } })).toThrow(TypeError); // functions have no JSON form
  });

  it('encodes execution statements (with and without content, ok and error) exactly as canonicalJson', () => {
    const signer = createReceiptSigner();
    const cases = [
      sampleExecutionParams(signer.publicKeyRaw),
      sampleExecutionParams(signer.publicKeyRaw, { outcome: 'error', errorCode: 'sandbox.trap', caller: { id: 'agent:x' } }),
    ];
    for (const params of cases) {
      for (const options of [{}, { includeInput: true, includeOutput: true }]) {
        const st = buildExecutionStatement(params, options);
        const bytes = encodeStatement(st);
        expect(new TextDecoder().decode(bytes)).toBe(canonicalJson(st));
        const envelope = signStatement(st, signer);
        const parsed = parseDsse(envelope);
        const sig = Buffer.from(parsed.signatures[0]!.sig).toString('base64');
        expect(new TextDecoder().decode(envelope)).toBe(canonicalJson({ payload: Buffer.from(parsed.payload).toString('base64'), payloadType: parsed.payloadType, signatures: [{ keyid: signer.keyId, sig }] }));
      }
    }
  });
});

describe('receipt digests', () => {
  it('the installed native SHA-256 gives the pure-JS digests', async () => {
    const { sha256 } = await import('@noble/hashes/sha2.js');
    const { sha256Portable } = await import('../../src/receipts/ed25519.ts');
    for (const len of [0, 1, 55, 56, 64, 1000]) {
      const data = new Uint8Array(len).map((_, i) => (i * 31 + len) & 0xff);
      expect(Buffer.from(sha256Portable(data)).toString('hex')).toBe(Buffer.from(sha256(data)).toString('hex'));
    }
  });
});
