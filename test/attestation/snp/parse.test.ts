import { describe, expect, it } from 'vitest';
import { AttexError } from '../../../src/errors/index.ts';
import { decodeTcb, parseSnpReport, productFromCpuid, snpFields } from '../../../src/attestation/snp/index.ts';
import { loadSnpVectors } from './vectors.ts';

const vectors = loadSnpVectors();
const reportOf = (v: (typeof vectors)[number]): Uint8Array => (v.kind === 'snp' ? v.evidence : v.evidence.subarray(0x20, 0x20 + 1184));

function parseError(bytes: Uint8Array): AttexError {
  try {
    parseSnpReport(bytes);
  } catch (err) {
    return err as AttexError;
  }
  throw new Error('expected parseSnpReport to throw');
}

describe('parseSnpReport + snpFields', () => {
  it('covers every SNP vector in expected.json', () => {
    expect(vectors.map((v) => v.name).sort()).toEqual([
      'snp/azure-hcl-milan-v2-trustee',
      'snp/genoa-v5-oak',
      'snp/milan-v2-go-sev-guest',
      'snp/milan-v2-virtee',
      'snp/milan-v3-vlek-trustee',
      'snp/negative-bad-vcek-trustee',
      'snp/turin-v5-oak',
    ]);
  });

  for (const v of vectors) {
    it(`${v.name}: fields equal expected.json exactly`, () => {
      const report = parseSnpReport(reportOf(v));
      expect(snpFields(report, v.product)).toStrictEqual(v.fields);
    });
  }

  it('without a product hint, v3+ reports use the CPUID product for the TCB layout', () => {
    const turin = vectors.find((v) => v.name === 'snp/turin-v5-oak')!;
    expect(snpFields(parseSnpReport(turin.evidence))).toStrictEqual(turin.fields);
  });

  it('decodes policy, key info, CPUID and mitigation vectors', () => {
    const goSevGuest = parseSnpReport(vectors.find((v) => v.name === 'snp/milan-v2-go-sev-guest')!.evidence);
    expect(goSevGuest.policy).toBe(0xb0000n);
    expect(goSevGuest.policyDecoded.debug).toBe(true);
    expect(goSevGuest.cpuid).toBeNull();
    expect(goSevGuest.launchMitVector).toBeNull();
    const vlek = parseSnpReport(vectors.find((v) => v.name === 'snp/milan-v3-vlek-trustee')!.evidence);
    expect(vlek.signingKey).toBe('vlek');
    expect(vlek.cpuid).toEqual({ family: 0x19, model: 1, stepping: 1, product: 'Milan' });
    const genoa = parseSnpReport(vectors.find((v) => v.name === 'snp/genoa-v5-oak')!.evidence);
    expect(genoa.currentMitVector).toBe(1n);
  });

  it('maps CPUID to KDS products, including Bergamo/Siena as Genoa', () => {
    expect(productFromCpuid(0x19, 0x01)).toBe('Milan');
    expect(productFromCpuid(0x19, 0x11)).toBe('Genoa');
    expect(productFromCpuid(0x19, 0xa0)).toBe('Genoa');
    expect(productFromCpuid(0x1a, 0x02)).toBe('Turin');
    expect(productFromCpuid(0x19, 0x50)).toBeNull();
    expect(productFromCpuid(0x17, 0x31)).toBeNull();
  });

  it('decodes TCB per product: Turin moves fields and adds FMC', () => {
    const raw = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(decodeTcb(raw, 'Milan')).toMatchObject({ bl: 1, tee: 2, snp: 7, ucode: 8 });
    expect(decodeTcb(raw, 'Milan').fmc).toBeUndefined();
    expect(decodeTcb(raw, 'Turin')).toMatchObject({ fmc: 1, bl: 2, tee: 3, snp: 4, ucode: 8 });
  });

  it('rejects wrong lengths with snp.parse', () => {
    const good = vectors[1]!.evidence;
    for (const bytes of [new Uint8Array(0), good.subarray(0, 1183), new Uint8Array([...good, 0]), new Uint8Array(4000)]) {
      const err = parseError(bytes);
      expect(err).toBeInstanceOf(AttexError);
      expect(err.code).toBe('snp.parse');
      expect(err.message).toContain('1184');
    }
  });

  it('rejects unknown versions with snp.parse', () => {
    for (const version of [0, 1, 4, 6, 0xffffffff]) {
      const bytes = vectors[1]!.evidence.slice();
      new DataView(bytes.buffer).setUint32(0, version, true);
      const err = parseError(bytes);
      expect(err.code).toBe('snp.parse');
      expect(err.message).toContain(`version ${version}`);
    }
  });

  it('rejects non-bytes with snp.parse', () => {
    expect(parseError('not bytes' as unknown as Uint8Array).code).toBe('snp.parse');
  });

  it('copies its input: later changes to the buffer do not alter the parsed report', () => {
    const bytes = vectors[1]!.evidence.slice();
    const report = parseSnpReport(bytes);
    const before = snpFields(report);
    bytes.fill(0xee);
    expect(snpFields(report)).toStrictEqual(before);
  });
});
