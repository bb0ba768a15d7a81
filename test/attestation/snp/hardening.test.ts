/**
 * Attacks on the SNP and Azure HCL verifiers: certificate profile (signature algorithm and PSS
 * parameters, critical extensions, CA flags), CRL profile, oversized inputs and cache keying.
 * The throwaway PKI holds the keys, so each forgery is otherwise perfectly signed: the only thing
 * wrong is the thing under test.
 */
import 'reflect-metadata';
import { BasicConstraintsExtension, Extension } from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAzureHclVerifier, verifyAzureHcl } from '../../../src/attestation/azure-hcl/index.ts';
import { createSnpVerifier, parseSnpReport, verifySnp } from '../../../src/attestation/snp/index.ts';
import type { SnpVerifyInput } from '../../../src/attestation/types.ts';
import { forgeCrl, forgePki, forgeReport, type ForgedPki } from './forge.ts';
import { amdTrust, vector } from './vectors.ts';

const codes = (r: { reasons: readonly { code: string }[] }): string[] => r.reasons.map((x) => x.code);
const DAY = 86_400_000;

let pki: ForgedPki;
let report: Uint8Array;
let now: Date;

beforeAll(async () => {
  pki = await forgePki({ cn: 'Hardening' });
  report = await forgeReport(pki, new Uint8Array(64).fill(3));
  now = new Date(pki.notBefore.getTime() + 30 * DAY);
});

/** A report from a PKI forged with `opts`, verified against that PKI's (trusted) root set. */
async function forgedInput(opts: Parameters<typeof forgePki>[0]): Promise<SnpVerifyInput> {
  const p = await forgePki({ cn: 'Variant', ...opts });
  return {
    evidence: await forgeReport(p, new Uint8Array(64)),
    vekCert: new Uint8Array(p.vcek.rawData),
    trust: amdTrust([p.rootSet(false)]),
    now: new Date(p.notBefore.getTime() + 30 * DAY),
  };
}

describe('VEK certificate profile', () => {
  it('the well-formed forged chain is accepted (baseline for the cases below)', async () => {
    const r = await verifySnp({ evidence: report, vekCert: new Uint8Array(pki.vcek.rawData), trust: amdTrust([pki.rootSet(false)]), now });
    expect(r).toMatchObject({ outcome: 'accept', reasons: [] });
  });

  it('a VCEK signed with RSA-PSS SHA-256 / salt 32 (not SHA-384 / salt 48) is refused with snp.cert-profile', async () => {
    const r = await verifySnp(await forgedInput({ vcekSigningAlgorithm: { name: 'RSA-PSS', hash: 'SHA-256', saltLength: 32 } }));
    expect(r.outcome).toBe('reject');
    expect(codes(r)).toEqual(['snp.cert-profile']);
    expect(r.reasons[0]!.message).toMatch(/RSASSA-PSS/);
  });

  it('a VCEK with an unknown critical extension is refused with snp.cert-profile', async () => {
    const r = await verifySnp(await forgedInput({ vcekExtraExtensions: [new Extension('1.2.3.4.5.6', true, new Uint8Array([5, 0]))] }));
    expect(codes(r)).toEqual(['snp.cert-profile']);
    expect(r.reasons[0]!.message).toContain('1.2.3.4.5.6');
  });

  it('a VCEK that claims to be a CA is refused with snp.cert-profile', async () => {
    const r = await verifySnp(await forgedInput({ vcekExtraExtensions: [new BasicConstraintsExtension(true, undefined, true)] }));
    expect(codes(r)).toEqual(['snp.cert-profile']);
  });

  it('a trusted ASK without CA basicConstraints does not vouch for a VCEK (snp.ask-chain)', async () => {
    const r = await verifySnp(await forgedInput({ askWithoutCaExtensions: true }));
    expect(codes(r)).toEqual(['snp.ask-chain']);
    expect(r.reasons[0]!.message).toMatch(/not a CA/);
  });
});

describe('CRL profile', () => {
  const input = (crls: Uint8Array[]): SnpVerifyInput => ({
    evidence: report, vekCert: new Uint8Array(pki.vcek.rawData), trust: amdTrust([pki.rootSet(false)]), now, crls,
  });

  it('a CRL without nextUpdate (current forever) is refused with snp.crl', async () => {
    const crl = await forgeCrl(pki.ark, pki.arkKeys.privateKey, [], { thisUpdate: new Date(now.getTime() - DAY) });
    const r = await verifySnp(input([crl]));
    expect(codes(r)).toEqual(['snp.crl']);
    expect(r.reasons[0]!.message).toContain('nextUpdate');
  });

  it('a delta CRL (it lists only changes) is refused with snp.crl', async () => {
    const delta = new Extension('2.5.29.27', true, new Uint8Array([0x02, 0x01, 0x01]));
    const crl = await forgeCrl(pki.ark, pki.arkKeys.privateKey, [], { thisUpdate: new Date(now.getTime() - DAY), nextUpdate: new Date(now.getTime() + DAY) }, [delta]);
    const r = await verifySnp(input([crl]));
    expect(codes(r)).toEqual(['snp.crl']);
    expect(r.reasons[0]!.message).toMatch(/delta/i);
  });
});

describe('size limits', () => {
  it('an oversized VEK certificate, too many CRLs or an oversized CRL is refused with snp.too-large, without parsing', async () => {
    const base: SnpVerifyInput = { evidence: report, vekCert: new Uint8Array(pki.vcek.rawData), trust: amdTrust([pki.rootSet(false)]), now };
    const bigCert = await verifySnp({ ...base, vekCert: new Uint8Array(1 << 20) });
    expect(codes(bigCert)).toEqual(['snp.too-large']);
    const manyCrls = await verifySnp({ ...base, crls: Array.from({ length: 10_000 }, () => new Uint8Array(3)) });
    expect(codes(manyCrls)).toEqual(['snp.too-large']);
    const bigCrl = await verifySnp({ ...base, crls: [new Uint8Array(64 << 20)] });
    expect(codes(bigCrl)).toEqual(['snp.too-large']);
  });

  it('an HCL blob larger than any vTPM NV index is refused with hcl.too-large', async () => {
    const v = vector('snp/azure-hcl-milan-v2-trustee');
    const huge = new Uint8Array(64 << 20);
    huge.set(v.evidence);
    const r = await verifyAzureHcl({ evidence: huge, vekCert: v.vekCert, trust: amdTrust(), now: v.now });
    expect(codes(r)).toEqual(['hcl.too-large']);
  });

  it('deeply nested claims JSON is a parse failure, never an exception', async () => {
    const v = vector('snp/azure-hcl-milan-v2-trustee');
    const blob = v.evidence.slice();
    const view = new DataView(blob.buffer);
    const claimsAt = 0x4c0 + 20;
    const claimsLen = view.getUint32(0x4c0 + 16, true);
    blob.fill(0x5b, claimsAt, claimsAt + claimsLen); // '[' * claimsLen
    const r = await createAzureHclVerifier().verify({ evidence: blob, vekCert: v.vekCert, trust: amdTrust(), now: v.now });
    expect(r.outcome).toBe('reject');
    expect(codes(r)).toEqual(['hcl.parse']);
  });
});

describe('evaluate, the verifier\'s public second step', () => {
  it('checks its input as verify does: an invalid now is snp.input, never a pass of every validity window', async () => {
    const verifier = createSnpVerifier();
    const input = { evidence: report, vekCert: new Uint8Array(pki.vcek.rawData), trust: amdTrust([pki.rootSet(false)]), now };
    const parsed = parseSnpReport(report);
    expect((await verifier.evaluate(parsed, input)).reasons).toEqual([]);
    expect(codes(await verifier.evaluate(parsed, { ...input, now: new Date(Number.NaN) }))).toEqual(['snp.input']);
    expect(codes(await verifier.evaluate(parsed, { ...input, now: new Date(now.getTime() + 3650 * DAY) }))).toContain('snp.cert-validity');
  });
});

describe('caches never carry an answer across trust stores', () => {
  it('the same bytes: accepted with the test root, refused without it, refused when it turns simulated', async () => {
    const verifier = createSnpVerifier();
    const base = { evidence: report, vekCert: new Uint8Array(pki.vcek.rawData), now };
    expect((await verifier.verify({ ...base, trust: amdTrust([pki.rootSet(false)]) })).outcome).toBe('accept');
    expect(codes(await verifier.verify({ ...base, trust: amdTrust() }))).toContain('snp.vek-chain');
    const simulated = await verifier.verify({ ...base, trust: amdTrust([pki.rootSet(true)], false) });
    expect(codes(simulated)).toEqual(['attestation.simulated-root']);
    expect(simulated.simulated).toBe(true);
  });
});
