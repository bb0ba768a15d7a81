import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AttexError } from '../../src/errors/index.ts';
import {
  IN_TOTO_PAYLOAD_TYPE,
  MAX_ENVELOPE_BYTES,
  createReceiptSigner,
  decodeBase64,
  encodeBase64,
  pae,
  parseDsse,
  signDsse,
  sslibKeyId,
  verifyDsse,
} from '../../src/receipts/index.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const interop = path.resolve(repoRoot, '../shared/interop');
const enc = new TextEncoder();
const dec = new TextDecoder();
const statement = enc.encode(
  JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [{ name: 'o', digest: { sha256: 'ab'.repeat(32) } }], predicateType: 'https://attex.dev/t', predicate: {} }),
);

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof AttexError) return err.code;
    return `non-AttexError: ${String(err)}`;
  }
  return 'no error';
}

describe('DSSE envelopes', () => {
  const signer = createReceiptSigner();

  it('computes PAE with byte lengths (DSSE v1 spec example shape)', () => {
    expect(dec.decode(pae('http://example.com/HelloWorld', enc.encode('hello world')))).toBe('DSSEv1 29 http://example.com/HelloWorld 11 hello world');
    // Lengths count bytes, not characters.
    expect(dec.decode(pae('t', enc.encode('é')))).toBe('DSSEv1 1 t 2 é');
  });

  it('signs deterministically into compact, sorted JSON carrying the securesystemslib keyid', () => {
    const a = signDsse(IN_TOTO_PAYLOAD_TYPE, statement, signer);
    const b = signDsse(IN_TOTO_PAYLOAD_TYPE, statement, signer);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    const text = dec.decode(a);
    expect(text.startsWith('{"payload":"')).toBe(true);
    expect(text).not.toMatch(/\s/);
    const json = JSON.parse(text);
    expect(Object.keys(json)).toEqual(['payload', 'payloadType', 'signatures']);
    expect(json.signatures[0].keyid).toBe(signer.keyId);
    expect(signer.keyId).toBe(sslibKeyId(signer.publicKeyRaw));
    const v = verifyDsse(a, signer.publicKeyRaw);
    expect(v.payloadType).toBe(IN_TOTO_PAYLOAD_TYPE);
    expect(dec.decode(v.payload)).toBe(dec.decode(statement));
    expect(v.keyId).toBe(signer.keyId);
  });

  it('rejects another key, a tampered payload and a tampered payloadType', () => {
    const env = signDsse(IN_TOTO_PAYLOAD_TYPE, statement, signer);
    expect(code(() => verifyDsse(env, createReceiptSigner().publicKeyRaw))).toBe('receipt.signature');
    const json = JSON.parse(dec.decode(env));
    json.payload = encodeBase64(enc.encode(dec.decode(statement).replace('attex.dev/t', 'attex.dev/u')));
    expect(code(() => verifyDsse(enc.encode(JSON.stringify(json)), signer.publicKeyRaw))).toBe('receipt.signature');
    const json2 = JSON.parse(dec.decode(env));
    json2.payloadType = 'application/json';
    expect(code(() => verifyDsse(enc.encode(JSON.stringify(json2)), signer.publicKeyRaw))).toBe('receipt.signature');
  });

  it('treats keyid as a hint: a wrong or missing keyid still verifies, and a bad signature is skipped for a good one', () => {
    const json = JSON.parse(dec.decode(signDsse(IN_TOTO_PAYLOAD_TYPE, statement, signer)));
    const good = json.signatures[0];
    json.signatures = [{ keyid: signer.keyId, sig: encodeBase64(new Uint8Array(64)) }, { keyid: 'nope', sig: good.sig }];
    expect(verifyDsse(enc.encode(JSON.stringify(json)), signer.publicKeyRaw).keyId).toBe('nope');
    json.signatures = [{ sig: good.sig }];
    expect(verifyDsse(enc.encode(JSON.stringify(json)), signer.publicKeyRaw).keyId).toBeUndefined();
  });

  it('accepts URL-safe and unpadded base64 (DSSE allows both) but nothing looser', () => {
    const json = JSON.parse(dec.decode(signDsse(IN_TOTO_PAYLOAD_TYPE, statement, signer)));
    const urlSafe = { ...json, payload: json.payload.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '') };
    expect(verifyDsse(enc.encode(JSON.stringify(urlSafe)), signer.publicKeyRaw).payload).toEqual(statement);
    for (const payload of [`${json.payload} `, `${json.payload.slice(0, -4)}!!!!`, 'a', 'ab=c', 'YQ=', 'YR==']) {
      expect(code(() => verifyDsse(enc.encode(JSON.stringify({ ...json, payload })), signer.publicKeyRaw)), payload).toBe('receipt.malformed');
    }
  });

  it('refuses malformed envelopes with receipt.* codes, never another exception', () => {
    const good = dec.decode(signDsse(IN_TOTO_PAYLOAD_TYPE, statement, signer));
    const cases: [string, Uint8Array, string][] = [
      ['garbage', enc.encode('not json'), 'receipt.malformed'],
      ['truncated', enc.encode(good.slice(0, good.length - 5)), 'receipt.malformed'],
      ['array', enc.encode('[]'), 'receipt.malformed'],
      ['duplicate key', enc.encode(good.replace('{"payload":', '{"payload":"AAAA","payload":')), 'receipt.malformed'],
      ['invalid utf-8', new Uint8Array([0x7b, 0xff, 0x7d]), 'receipt.malformed'],
      ['no signatures', enc.encode(good.replace(/"signatures":\[.*\]/, '"signatures":[]')), 'receipt.malformed'],
      ['sig not a string', enc.encode(good.replace(/"sig":"[^"]*"/, '"sig":7')), 'receipt.malformed'],
      ['empty payloadType', enc.encode(good.replace(IN_TOTO_PAYLOAD_TYPE, '')), 'receipt.malformed'],
      ['deep nesting', enc.encode(`${'['.repeat(5000)}${']'.repeat(5000)}`), 'receipt.malformed'],
      ['oversized', new Uint8Array(MAX_ENVELOPE_BYTES + 1).fill(0x20), 'receipt.too-large'],
    ];
    for (const [name, bytes, expected] of cases) expect(code(() => verifyDsse(bytes, signer.publicKeyRaw)), name).toBe(expected);
    expect(code(() => verifyDsse(enc.encode(good), new Uint8Array(31)))).toBe('receipt.key');
  });

  it('tolerates unknown top-level members, as the DSSE spec asks', () => {
    const json = JSON.parse(dec.decode(signDsse(IN_TOTO_PAYLOAD_TYPE, statement, signer)));
    expect(verifyDsse(enc.encode(JSON.stringify({ ...json, extra: { a: 1 } })), signer.publicKeyRaw).payloadType).toBe(IN_TOTO_PAYLOAD_TYPE);
    expect(parseDsse(enc.encode(JSON.stringify(json))).signatures).toHaveLength(1);
  });

  it('refuses to sign an envelope larger than a log entry', () => {
    expect(code(() => signDsse(IN_TOTO_PAYLOAD_TYPE, new Uint8Array(60_000), signer))).toBe('receipt.too-large');
  });

  it('base64 round-trips every length and rejects non-canonical trailing bits', () => {
    for (let n = 0; n < 40; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
      expect(encodeBase64(bytes)).toBe(Buffer.from(bytes).toString('base64'));
      expect(decodeBase64(encodeBase64(bytes))).toEqual(bytes);
    }
    expect(decodeBase64('YR==')).toBeNull();
    expect(decodeBase64('Y+_A')).toBeNull(); // mixed alphabets
  });

  it('is accepted by securesystemslib (independent DSSE checker) with its own keyid rule', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'attex-dsse-'));
    try {
      mkdirSync(path.join(dir, 'receipts'));
      for (let i = 0; i < 3; i++) writeFileSync(path.join(dir, 'receipts', `${i}.dsse.json`), signDsse(IN_TOTO_PAYLOAD_TYPE, statement, signer));
      writeFileSync(path.join(dir, 'executor.pub'), Buffer.from(signer.publicKeyRaw).toString('hex'));
      const out = execFileSync('/usr/bin/python3', [path.join(interop, 'dsse_verify.py'), path.join(dir, 'executor.pub'), path.join(dir, 'receipts')], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(out).toMatch(/3 passed, 0 failed/);
      expect(out).not.toMatch(/^note/m); // a keyid mismatch would be reported as a note
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
