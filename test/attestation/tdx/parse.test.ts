import { describe, expect, it } from 'vitest';
import { AttexError } from '../../../src/errors/index.ts';
import { concatBytes } from '../../../src/util/index.ts';
import { parsePckChain, parseTdxQuote, tdxFields } from '../../../src/attestation/tdx/index.ts';
import { tdxVectors, vector } from './vectors.ts';

function parseError(bytes: Uint8Array): AttexError {
  try {
    parseTdxQuote(bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(AttexError);
    return err as AttexError;
  }
  throw new Error('parse unexpectedly succeeded');
}

function withU16(bytes: Uint8Array, at: number, value: number): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setUint16(at, value, true);
  return copy;
}

function withU32(bytes: Uint8Array, at: number, value: number): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setUint32(at, value, true);
  return copy;
}

describe('parseTdxQuote on the vendor vectors', () => {
  for (const v of tdxVectors) {
    it(`${v.name}: every expected field, by name and encoding`, () => {
      const quote = parseTdxQuote(v.quote);
      const fields = tdxFields(quote, parsePckChain(quote.pckChainPem).sgx);
      for (const [key, value] of Object.entries(v.expected.fields)) {
        expect(fields[key], key).toEqual(value);
      }
      expect(Object.keys(fields).sort()).toEqual(Object.keys(v.expected.fields).sort());
    });
  }

  it('reads a v5 TDX 1.5 body (type 3, 648 bytes) and signs over 54 + 648 bytes', () => {
    const quote = parseTdxQuote(vector('v5-go-tdx-guest').quote);
    expect(quote.header.version).toBe(5);
    expect(quote.bodyType).toBe(3);
    expect(quote.signedBytes.length).toBe(702);
    expect(quote.report.teeTcbSvn2).toHaveLength(16);
    expect(quote.report.mrServiceTd).toHaveLength(48);
  });

  it('ignores trailing bytes: non-zero (SPR), zero (dcap-qvl) and padding to 8000 (GCP style)', () => {
    expect(parseTdxQuote(vector('v4-spr-go-tdx-guest').quote).trailingBytes).toBe(39);
    expect(parseTdxQuote(vector('v4-dcap-qvl').quote).trailingBytes).toBe(70);
    const base = vector('v5-go-tdx-guest').quote;
    const padded = concatBytes(base, new Uint8Array(8000 - base.length));
    const quote = parseTdxQuote(padded);
    expect(quote.trailingBytes).toBe(8000 - 5006);
    expect(quote.length).toBe(5006);
  });

  it('keeps the PEM chain as embedded, including a terminating NUL', () => {
    const quote = parseTdxQuote(vector('v4-dcap-qvl').quote);
    expect(quote.pckChainPem.at(-1)).toBe(0);
    const chain = parsePckChain(quote.pckChainPem);
    expect(chain.embeddedRoot?.subject).toContain('Intel SGX Root CA');
  });
});

describe('parseTdxQuote rejects inconsistent quotes with tdx.parse', () => {
  const good = vector('v4-dcap-qvl').quote;
  const v5 = vector('v5-go-tdx-guest').quote;

  it('wrong version, attestation key type, TEE type', () => {
    expect(parseError(withU16(good, 0, 3)).message).toMatch(/version 3/);
    expect(parseError(withU16(good, 2, 3)).message).toMatch(/attestation key type 3/);
    expect(parseError(withU32(good, 4, 0)).message).toMatch(/TEE type 0x0/);
  });

  it('v5 body type and size must agree', () => {
    expect(parseError(withU16(v5, 48, 1)).message).toMatch(/body type 1/);
    expect(parseError(withU32(v5, 50, 584)).message).toMatch(/body size 584/);
  });

  it('length fields that exceed the buffer or disagree with each other', () => {
    const sigLenAt = 48 + 584;
    expect(parseError(withU32(good, sigLenAt, 0xffffffff)).code).toBe('tdx.parse');
    expect(parseError(withU32(good, sigLenAt, 4300 + 70)).message).toMatch(/disagrees/);
    const certTypeAt = sigLenAt + 4 + 128;
    expect(parseError(withU16(good, certTypeAt, 5)).message).toMatch(/certification data type 5/);
    expect(parseError(withU32(good, certTypeAt + 2, 4000)).message).toMatch(/disagrees/);
    const authLenAt = certTypeAt + 6 + 384 + 64;
    expect(parseError(withU16(good, authLenAt, 0xffff)).code).toBe('tdx.parse');
    const innerTypeAt = authLenAt + 2 + 32;
    expect(parseError(withU16(good, innerTypeAt, 6)).message).toMatch(/nested certification data type 6/);
  });

  it('every truncation throws tdx.parse, never anything else', () => {
    for (let len = 0; len < 4936; len += 7) {
      expect(parseError(good.subarray(0, len)).code).toBe('tdx.parse');
    }
    expect(parseError(good.subarray(0, 4935)).code).toBe('tdx.parse');
    expect(parseTdxQuote(good.subarray(0, 4936)).trailingBytes).toBe(0);
  });

  it('random garbage throws tdx.parse', () => {
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) & 0xff;
    for (let i = 0; i < 200; i++) {
      const junk = Uint8Array.from({ length: 64 + (i * 37) % 6000 }, next);
      expect(parseError(junk).code).toBe('tdx.parse');
    }
    // A valid header followed by garbage.
    for (let i = 0; i < 50; i++) {
      const junk = good.slice();
      for (let j = 632; j < junk.length; j++) junk[j] = next();
      expect(() => parseTdxQuote(junk)).toThrow(AttexError);
    }
  });
});
