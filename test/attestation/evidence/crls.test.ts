/**
 * AMD CRLs and extra certificates in an evidence package: CRLs travel with SNP evidence and reach
 * the SNP verifier; certificates after the VCEK/VLEK may only repeat trusted ones, byte for byte.
 * A test PKI stands in for AMD's, which signs no CRL that revokes a vector's VCEK.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  decodeEvidencePackage, encodeEvidencePackage, makeEvidencePackage, parseEvidencePackage, verifyEvidence,
} from '../../../src/attestation/index.ts';
import type { TrustStore, VerificationResult } from '../../../src/attestation/types.ts';
import { forgeCrl, forgePki, forgeReport, type ForgedPki } from '../snp/forge.ts';
import { amdTrust } from '../snp/vectors.ts';

const DAY = 86_400_000;
const codes = (r: VerificationResult) => r.reasons.map((x) => x.code);
let pki: ForgedPki;
let report: Uint8Array;
let trust: TrustStore;
let now: Date;
const der = (c: { rawData: ArrayBuffer }) => new Uint8Array(c.rawData);

beforeAll(async () => {
  pki = await forgePki({ cn: 'PackageCrls' });
  report = await forgeReport(pki, new Uint8Array(64).fill(7));
  trust = amdTrust([pki.rootSet(false)]);
  now = new Date(pki.notBefore.getTime() + 30 * DAY);
});

describe('evidence package: crls', () => {
  const window = () => ({ thisUpdate: new Date(now.getTime() - DAY), nextUpdate: new Date(now.getTime() + DAY) });

  it('passes CRLs to the SNP verifier: a current CRL that lists nothing accepts, one revoking the VCEK rejects', async () => {
    const clean = await forgeCrl(pki.ark, pki.arkKeys.privateKey, [], window());
    const ok = await verifyEvidence(makeEvidencePackage({ kind: 'snp', evidence: report, certs: [der(pki.vcek)], crls: [clean] }), { trust, now });
    expect(ok.outcome).toBe('accept');
    const revoking = await forgeCrl(pki.ask, pki.askKeys.privateKey, [pki.vcek.serialNumber], window());
    const r = await verifyEvidence(makeEvidencePackage({ kind: 'snp', evidence: report, certs: [der(pki.vcek)], crls: [clean, revoking] }), { trust, now });
    expect(r.outcome).toBe('reject');
    expect(codes(r)).toEqual(['snp.revoked']);
  });

  it('a CRL that is not a CRL is a reason, not an exception', async () => {
    const r = await verifyEvidence(makeEvidencePackage({ kind: 'snp', evidence: report, certs: [der(pki.vcek)], crls: [new Uint8Array([0x30, 0x03, 1, 2, 3])] }), { trust, now });
    expect(codes(r)).toEqual(['snp.crl']);
  });

  it('decodes strictly and round-trips in a fixed key order', async () => {
    const crl = await forgeCrl(pki.ark, pki.arkKeys.privateKey, [], window());
    const pkg = makeEvidencePackage({ kind: 'snp', evidence: report, certs: [der(pki.vcek)], crls: [crl] });
    const text = encodeEvidencePackage(pkg);
    expect(Object.keys(JSON.parse(text))).toEqual(['kind', 'evidence', 'certs', 'crls']);
    expect(parseEvidencePackage(text)).toEqual(pkg);
    const b64 = pkg.crls![0]!;
    const bad = (crls: unknown) => () => decodeEvidencePackage({ ...pkg, crls });
    expect(bad('x')).toThrow(/crls: expected an array/);
    expect(bad([''])).toThrow(/crls\[0\]/);
    expect(bad([`${b64.slice(0, -4)} ${b64.slice(-4)}`])).toThrow(/crls\[0\]: not canonical base64/);
    expect(bad(Array(9).fill(b64))).toThrow(/more than 8 CRLs/);
    expect(() => decodeEvidencePackage({ kind: 'tdx', evidence: pkg.evidence, crls: [b64] })).toThrow(/crls: not used for tdx/);
  });
});

describe('evidence package: certificates after the VEK', () => {
  it('may repeat a trusted AMD certificate byte for byte, and nothing else', async () => {
    const withAsk = await verifyEvidence(makeEvidencePackage({ kind: 'snp', evidence: report, certs: [der(pki.vcek), der(pki.ask), der(pki.ark)] }), { trust, now });
    expect(withAsk.outcome).toBe('accept');
    const other = await forgePki({ cn: 'Stranger' });
    const r = await verifyEvidence(makeEvidencePackage({ kind: 'snp', evidence: report, certs: [der(pki.vcek), der(other.ask)] }), { trust, now });
    expect(r.outcome).toBe('reject');
    expect(codes(r)).toEqual(['evidence.untrusted-cert']);
    expect(r.reasons[0]!.message).toMatch(/certs\[1\]/);
  });
});
