/**
 * Root selection, simulated roots and CRLs, with a throwaway AMD-shaped PKI (AMD's keys cannot
 * sign test CRLs) next to AMD's real roots.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { verifySnp } from '../../../src/attestation/snp/index.ts';
import type { SnpVerifyInput } from '../../../src/attestation/types.ts';
import { forgeCrl, forgePki, forgeReport, signReport, type ForgedPki } from './forge.ts';
import { amdRootSets, amdTrust, vector } from './vectors.ts';

const codes = (r: { reasons: readonly { code: string }[] }): string[] => r.reasons.map((x) => x.code);
const DAY = 86_400_000;

let pki: ForgedPki;
let other: ForgedPki;
let report: Uint8Array;
let now: Date;

beforeAll(async () => {
  [pki, other] = await Promise.all([forgePki({ cn: 'Throwaway' }), forgePki({ cn: 'Other' })]);
  report = await forgeReport(pki, new Uint8Array(64).fill(7));
  now = new Date(pki.notBefore.getTime() + 30 * DAY);
});

function input(over: Partial<SnpVerifyInput> = {}): SnpVerifyInput {
  return { evidence: report, vekCert: new Uint8Array(pki.vcek.rawData), trust: amdTrust([pki.rootSet(false)]), now, ...over };
}

describe('root sets', () => {
  it('a report chaining to a test root set in the TrustStore is accepted', async () => {
    const result = await verifySnp(input());
    expect(result.reasons).toEqual([]);
    expect(result.outcome).toBe('accept');
    expect(result.fields['report_data']).toBe('07'.repeat(64));
  });

  it('the same report is not accepted without its root set (AMD Milan roots do not sign it)', async () => {
    const result = await verifySnp(input({ trust: amdTrust() }));
    expect(codes(result)).toEqual(['snp.vek-chain']);
  });

  it('among several Milan root sets, the one whose ASK verifies the VEK is used', async () => {
    const trust = amdTrust([other.rootSet(true), pki.rootSet(false)]);
    expect((await verifySnp(input({ trust }))).outcome).toBe('accept');
    const real = vector('snp/milan-v2-virtee');
    const result = await verifySnp({ evidence: real.evidence, vekCert: real.vekCert, trust: { ...trust, amd: [other.rootSet(true), ...trust.amd] }, now: real.now });
    expect(result.outcome).toBe('accept');
    expect(result.simulated).toBe(false);
    expect(result.tee).toBe('snp');
  });

  it('a chain ending at a simulated root is rejected unless simulated roots are allowed', async () => {
    const denied = await verifySnp(input({ trust: amdTrust([pki.rootSet(true)], false) }));
    expect(denied.outcome).toBe('reject');
    expect(denied.simulated).toBe(true);
    expect(denied.tee).toBe('sim-snp');
    expect(codes(denied)).toEqual(['attestation.simulated-root']);
    expect(denied.reasons[0]!.message).toContain('ARK-Milan-Throwaway');

    const allowed = await verifySnp(input({ trust: amdTrust([pki.rootSet(true)], true) }));
    expect(allowed.outcome).toBe('accept');
    expect(allowed.simulated).toBe(true);
    expect(allowed.tee).toBe('sim-snp');
  });

  it('a VCEK whose TCB extensions disagree with REPORTED_TCB is snp.tcb-mismatch', async () => {
    const tampered = report.slice();
    tampered[0x180 + 7] = 116; // ucode
    const result = await verifySnp(input({ evidence: await signReport(pki, tampered) }));
    expect(codes(result)).toEqual(['snp.tcb-mismatch']);
    expect(result.reasons[0]!.message).toContain('ucode 115 != 116');
  });

  it('CHIP_ID must equal the VCEK hwID, unless the firmware masked it to zeros', async () => {
    const other = report.slice();
    other[0x1a0] = other[0x1a0]! ^ 0xff;
    expect(codes(await verifySnp(input({ evidence: await signReport(pki, other) })))).toEqual(['snp.hwid-mismatch']);
    const masked = report.slice();
    masked.fill(0, 0x1a0, 0x1e0);
    expect((await verifySnp(input({ evidence: await signReport(pki, masked) }))).outcome).toBe('accept');
  });
});

describe('hwID encodings', () => {
  it('an hwID wrapped in an OCTET STRING is unwrapped and matched', async () => {
    const wrapped = await forgePki({ cn: 'Wrapped', hwIdEncoding: 'octet' });
    const evidence = await forgeReport(wrapped, new Uint8Array(64));
    const result = await verifySnp({ evidence, vekCert: new Uint8Array(wrapped.vcek.rawData), trust: amdTrust([wrapped.rootSet(false)]), now });
    expect(result.reasons).toEqual([]);
  });
});

describe('CRLs', () => {
  const window = () => ({ thisUpdate: new Date(now.getTime() - DAY), nextUpdate: new Date(now.getTime() + 7 * DAY) });

  it('an ARK-signed CRL that does not list the ASK is accepted', async () => {
    const crl = await forgeCrl(pki.ark, pki.arkKeys.privateKey, ['7777'], window());
    expect((await verifySnp(input({ crls: [crl] }))).outcome).toBe('accept');
  });

  it('an ARK-signed CRL listing the ASK serial revokes it', async () => {
    const crl = await forgeCrl(pki.ark, pki.arkKeys.privateKey, ['7777', pki.ask.serialNumber], window());
    const result = await verifySnp(input({ crls: [crl] }));
    expect(codes(result)).toEqual(['snp.revoked']);
    expect(result.reasons[0]!.message).toMatch(/^ASK \(SEV-Milan, serial 0100\) was revoked/);
  });

  it('an ASK-signed CRL covers the VCEK', async () => {
    const crl = await forgeCrl(pki.ask, pki.askKeys.privateKey, [pki.vcek.serialNumber], window());
    const result = await verifySnp(input({ crls: [crl] }));
    expect(codes(result)).toEqual(['snp.revoked']);
    expect(result.reasons[0]!.message).toMatch(/^VCEK/);
  });

  it('a CRL not signed by the ARK is refused with snp.crl, even with the ARK name as issuer', async () => {
    const foreign = await forgeCrl(pki.ark, other.arkKeys.privateKey, [], window());
    const result = await verifySnp(input({ crls: [foreign] }));
    expect(codes(result)).toEqual(['snp.crl']);
    expect(result.reasons[0]!.message).toContain('not signed by the trusted ARK');
  });

  it('a CRL from another root refuses a real AMD vector with snp.crl', async () => {
    const real = vector('snp/milan-v2-virtee');
    const crl = await forgeCrl(pki.ark, pki.arkKeys.privateKey, [], { thisUpdate: new Date(real.now.getTime() - DAY), nextUpdate: new Date(real.now.getTime() + DAY) });
    const result = await verifySnp({ evidence: real.evidence, vekCert: real.vekCert, trust: amdTrust(), now: real.now, crls: [crl] });
    expect(codes(result)).toEqual(['snp.crl']);
  });

  it('a stale or not-yet-valid CRL is refused, and garbage is refused', async () => {
    const stale = await forgeCrl(pki.ark, pki.arkKeys.privateKey, [], { thisUpdate: new Date(now.getTime() - 10 * DAY), nextUpdate: new Date(now.getTime() - DAY) });
    const early = await forgeCrl(pki.ark, pki.arkKeys.privateKey, [], { thisUpdate: new Date(now.getTime() + DAY), nextUpdate: new Date(now.getTime() + 9 * DAY) });
    const result = await verifySnp(input({ crls: [stale, early, new Uint8Array([0x30, 0x03, 1, 2, 3])] }));
    expect(codes(result)).toEqual(['snp.crl', 'snp.crl', 'snp.crl']);
    expect(result.reasons[0]!.message).toContain('stale');
    expect(result.reasons[1]!.message).toContain('not yet valid');
  });

  it('AMD roots alone do not vouch for a test root (sanity: the real ARKs differ)', () => {
    expect(amdRootSets().some((s) => s.ark.subject === pki.ark.subject)).toBe(false);
  });
});
