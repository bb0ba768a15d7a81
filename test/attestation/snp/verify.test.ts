import { describe, expect, it } from 'vitest';
import { createSnpVerifier, verifySnp } from '../../../src/attestation/snp/index.ts';
import type { SnpVerifyInput, TrustStore } from '../../../src/attestation/types.ts';
import { amdRootSets, amdTrust, loadSnpVectors, vector } from './vectors.ts';

const trust = amdTrust();
const plainSnp = loadSnpVectors().filter((v) => v.kind === 'snp');
const codes = (r: { reasons: readonly { code: string }[] }): string[] => r.reasons.map((x) => x.code);
const inputFor = (name: string, over: Partial<SnpVerifyInput> = {}): SnpVerifyInput => {
  const v = vector(name);
  return { evidence: v.evidence, vekCert: v.vekCert, trust, now: v.now, ...over };
};
const DAY = 86_400_000;

describe('verifySnp on the vendor vectors', () => {
  for (const v of plainSnp) {
    it(`${v.name}: ${v.outcome} at ${v.now.toISOString()}`, async () => {
      const result = await verifySnp({ evidence: v.evidence, vekCert: v.vekCert, trust, now: v.now });
      expect(result.kind).toBe('snp');
      expect(result.tee).toBe('snp');
      expect(result.simulated).toBe(false);
      expect(result.tcb_status).toBeNull();
      expect(result.advisory_ids).toEqual([]);
      expect(result.outcome).toBe(v.outcome);
      expect(result.fields).toStrictEqual(v.fields);
      if (v.outcome === 'accept') expect(result.reasons).toEqual([]);
    });
  }

  it('the trustee negative vector is rejected for signature, VEK chain, TCB and hwID', async () => {
    const result = await verifySnp(inputFor('snp/negative-bad-vcek-trustee'));
    expect(result.outcome).toBe('reject');
    expect(new Set(codes(result))).toEqual(new Set(['snp.report-signature', 'snp.vek-chain', 'snp.tcb-mismatch', 'snp.hwid-mismatch']));
    // its hwID is wrapped in an OCTET STRING: decoded, then compared (and different)
    expect(result.reasons.find((r) => r.code === 'snp.hwid-mismatch')!.message).toContain('000102030405');
  });
});

describe('validity at now', () => {
  it('a VCEK past notAfter is rejected, naming the VCEK and the instant', async () => {
    const v = vector('snp/genoa-v5-oak');
    const result = await verifySnp(inputFor(v.name, { now: new Date(v.notAfter.getTime() + 1000) }));
    expect(result.outcome).toBe('reject');
    expect(codes(result)).toEqual(['snp.cert-validity']);
    expect(result.reasons[0]!.message).toContain(`VCEK expired at ${v.notAfter.toISOString()}`);
  });

  it('a VLEK (one-year lifetime) a day after expiry is rejected, naming the VLEK', async () => {
    const v = vector('snp/milan-v3-vlek-trustee');
    const result = await verifySnp(inputFor(v.name, { now: new Date(v.notAfter.getTime() + DAY) }));
    expect(codes(result)).toEqual(['snp.cert-validity']);
    expect(result.reasons[0]!.message).toMatch(/^VLEK expired at 2025-12-10T22:14:21/);
  });

  it('a VCEK before notBefore is not yet valid', async () => {
    const v = vector('snp/turin-v5-oak');
    const result = await verifySnp(inputFor(v.name, { now: new Date(v.notBefore.getTime() - 1000) }));
    expect(codes(result)).toEqual(['snp.cert-validity']);
    expect(result.reasons[0]!.message).toContain('VCEK not yet valid');
  });

  it('after the ARK and ASK expire, each is named', async () => {
    const result = await verifySnp(inputFor('snp/milan-v2-virtee', { now: new Date('2046-01-01T00:00:00Z') }));
    const messages = result.reasons.map((r) => r.message);
    expect(codes(result)).toEqual(['snp.cert-validity', 'snp.cert-validity', 'snp.cert-validity']);
    expect(messages[0]).toMatch(/^VCEK expired/);
    expect(messages[1]).toMatch(/^ASK expired at 2045-10-22T18:24:20/);
    expect(messages[2]).toMatch(/^ARK expired at 2045-10-22T17:23:05/);
  });

  it('the exact validity boundaries are inclusive', async () => {
    const v = vector('snp/milan-v2-virtee');
    expect((await verifySnp(inputFor(v.name, { now: v.notBefore }))).outcome).toBe('accept');
    expect((await verifySnp(inputFor(v.name, { now: v.notAfter }))).outcome).toBe('accept');
  });
});

describe('hostile and inconsistent input', () => {
  it('truncated, oversized, garbage and wrong-version evidence is rejected with snp.parse, never thrown', async () => {
    const good = vector('snp/milan-v2-virtee').evidence;
    const wrongVersion = good.slice();
    wrongVersion[0] = 4;
    const cases = [good.subarray(0, 100), new Uint8Array([...good, 1, 2, 3]), crypto.getRandomValues(new Uint8Array(1184)), wrongVersion, new Uint8Array(0)];
    for (const evidence of cases) {
      const result = await verifySnp(inputFor('snp/milan-v2-virtee', { evidence }));
      expect(result.outcome).toBe('reject');
      expect(codes(result)).toContain('snp.parse');
      expect(result.fields).toEqual({});
    }
  });

  it('a garbage or truncated VEK certificate is snp.cert-malformed', async () => {
    const vcek = vector('snp/milan-v2-virtee').vekCert;
    for (const vekCert of [new Uint8Array(0), vcek.subarray(0, 500), crypto.getRandomValues(new Uint8Array(900))]) {
      const result = await verifySnp(inputFor('snp/milan-v2-virtee', { vekCert }));
      expect(result.outcome).toBe('reject');
      expect(codes(result)).toEqual(['snp.cert-malformed']);
      expect(result.fields['measurement']).toBe(vector('snp/milan-v2-virtee').fields['measurement']);
    }
  });

  it('a certificate that is not an AMD VEK (an ARK) is rejected', async () => {
    const ark = new Uint8Array(amdRootSets()[0]!.ark.rawData);
    const result = await verifySnp(inputFor('snp/milan-v2-virtee', { vekCert: ark }));
    expect(result.outcome).toBe('reject');
    expect(codes(result)).toEqual(['snp.cert-malformed']);
  });

  it('inputs of the wrong type are snp.input', async () => {
    const bad = { evidence: 'x', vekCert: null, trust: {}, now: new Date('nope') } as unknown as SnpVerifyInput;
    const result = await verifySnp(bad);
    expect(result.outcome).toBe('reject');
    expect(new Set(codes(result))).toEqual(new Set(['snp.input']));
    expect((await verifySnp(null as unknown as SnpVerifyInput)).outcome).toBe('reject');
  });

  it('a bit flip anywhere in the signed region breaks the report signature', async () => {
    for (const offset of [0x50, 0x90, 0x1a0 + 63, 0x29f]) {
      const evidence = vector('snp/genoa-v5-oak').evidence.slice();
      evidence[offset]! ^= 0x01;
      const result = await verifySnp(inputFor('snp/genoa-v5-oak', { evidence }));
      expect(result.outcome).toBe('reject');
      expect(codes(result)).toContain('snp.report-signature');
    }
  });

  it('a bit flip in the signature, or non-zero high bytes of R, breaks it too', async () => {
    for (const offset of [0x2a0, 0x2e8 + 47, 0x2a0 + 71]) {
      const evidence = vector('snp/genoa-v5-oak').evidence.slice();
      evidence[offset]! ^= 0x80;
      const result = await verifySnp(inputFor('snp/genoa-v5-oak', { evidence }));
      expect(codes(result)).toEqual(['snp.report-signature']);
    }
  });

  it('the VLEK with a report that claims VCEK signing is snp.signing-key', async () => {
    const evidence = vector('snp/milan-v3-vlek-trustee').evidence.slice();
    evidence[0x48] = 0; // signing key VCEK
    const result = await verifySnp(inputFor('snp/milan-v3-vlek-trustee', { evidence }));
    expect(codes(result)).toContain('snp.signing-key');
  });

  it('MASK_CHIP_KEY reports (unsigned) are rejected', async () => {
    const evidence = vector('snp/genoa-v5-oak').evidence.slice();
    evidence[0x48]! |= 0x02;
    const result = await verifySnp(inputFor('snp/genoa-v5-oak', { evidence }));
    expect(result.reasons.find((r) => r.code === 'snp.report-signature')!.message).toContain('MASK_CHIP_KEY');
  });

  it('a report from one product with a VCEK of another is snp.product', async () => {
    const result = await verifySnp(inputFor('snp/genoa-v5-oak', { vekCert: vector('snp/turin-v5-oak').vekCert }));
    expect(result.outcome).toBe('reject');
    expect(codes(result)).toContain('snp.product');
    expect(codes(result)).toContain('snp.report-signature');
  });

  it('a VCEK whose product has no trusted root set is snp.unknown-root', async () => {
    const noGenoa: TrustStore = { amd: amdRootSets().filter((s) => s.product !== 'Genoa'), intel: [], allowSimulated: false };
    const result = await verifySnp(inputFor('snp/genoa-v5-oak', { trust: noGenoa }));
    expect(codes(result)).toEqual(['snp.unknown-root']);
    const empty: TrustStore = { amd: [], intel: [], allowSimulated: false };
    expect(codes(await verifySnp(inputFor('snp/genoa-v5-oak', { trust: empty })))).toEqual(['snp.unknown-root']);
  });

  it('a root set that does not issue this VEK is snp.vek-chain (Milan certificates filed as Genoa)', async () => {
    const milan = amdRootSets().find((s) => s.product === 'Milan')!;
    const wrong: TrustStore = { amd: [{ ...milan, product: 'Genoa' }], intel: [], allowSimulated: false };
    const result = await verifySnp(inputFor('snp/genoa-v5-oak', { trust: wrong }));
    expect(codes(result)).toEqual(['snp.vek-chain']);
  });
});

describe('chain cache', () => {
  it('cached and uncached verifiers agree, and the cache never skips validity or report checks', async () => {
    const cached = createSnpVerifier({ cacheSize: 4 });
    const uncached = createSnpVerifier({ cacheSize: 0 });
    for (const v of plainSnp) {
      const input = { evidence: v.evidence, vekCert: v.vekCert, trust, now: v.now };
      const a = await cached.verify(input);
      const b = await cached.verify(input);
      const c = await uncached.verify(input);
      expect(b).toStrictEqual(a);
      expect(c).toStrictEqual(a);
    }
    const v = vector('snp/genoa-v5-oak');
    const late = await cached.verify({ evidence: v.evidence, vekCert: v.vekCert, trust, now: new Date(v.notAfter.getTime() + 1) });
    expect(codes(late)).toEqual(['snp.cert-validity']);
    const flipped = v.evidence.slice();
    flipped[0x90]! ^= 1;
    expect(codes(await cached.verify({ evidence: flipped, vekCert: v.vekCert, trust, now: v.now }))).toEqual(['snp.report-signature']);
  });
});
