import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appraise, builtinPolicy, loadPolicy } from '../../../src/attestation/appraisal/index.ts';
import { verifyEvidence } from '../../../src/attestation/evidence/index.ts';
import { openSimulatedTee, type SimulatedTee } from '../../../src/attestation/sim/index.ts';
import type { VerificationResult } from '../../../src/attestation/types.ts';
import { fromHex } from '../../../src/util/index.ts';
import { verifyVector } from './vectors.ts';

const strict = builtinPolicy('default');
const dev = builtinPolicy('dev-simulated');
const base = {
  version: 1, id: 'test', evidenceKinds: ['snp', 'azure-hcl-snp', 'tdx'], allowSimulated: false,
} as const;
const codes = (a: { reasons: { code: string }[] }) => a.reasons.map((r) => r.code);

let goSevGuest: VerificationResult;
let vlek: VerificationResult;
let genoa: VerificationResult;
let turin: VerificationResult;
let outOfDate: VerificationResult;
let dcapQvl: VerificationResult;
let azure: VerificationResult;
let tdxV5: VerificationResult;
let sim: SimulatedTee;
let simDir: string;

beforeAll(async () => {
  [goSevGuest, vlek, genoa, turin, outOfDate, dcapQvl, azure, tdxV5] = await Promise.all([
    verifyVector('snp/milan-v2-go-sev-guest'),
    verifyVector('snp/milan-v3-vlek-trustee'),
    verifyVector('snp/genoa-v5-oak'),
    verifyVector('snp/turin-v5-oak'),
    verifyVector('tdx/v4-outofdate-trustee'),
    verifyVector('tdx/v4-dcap-qvl'),
    verifyVector('snp/azure-hcl-milan-v2-trustee'),
    verifyVector('tdx/v5-go-tdx-guest'),
  ]);
  simDir = await mkdtemp(path.join(os.tmpdir(), 'attex-appraise-sim-'));
  sim = await openSimulatedTee(simDir);
});

afterAll(async () => {
  await rm(simDir, { recursive: true, force: true });
});

describe('appraise with real vendor vectors', () => {
  it('the verifier accepted the vectors this suite builds on', () => {
    for (const r of [goSevGuest, vlek, genoa, turin, dcapQvl, azure]) expect(r.outcome).toBe('accept');
    expect(outOfDate.outcome).toBe('accept-tcb-not-uptodate');
  });

  it('a clean TDX quote (UpToDate, no debug, SEPT_VE_DISABLE) is affirming under the strict default', () => {
    const a = appraise(dcapQvl, strict);
    expect(a).toMatchObject({ status: 'affirming', tee: 'tdx', policyId: 'attex-default', policyDigest: strict.digest, reasons: [] });
    expect(a.trustworthinessVector).toEqual({
      'instance-identity': 2, configuration: 2, executables: 0, 'file-system': 0, hardware: 2, 'runtime-opaque': 2, 'storage-opaque': 0, 'sourced-data': 0,
    });
  });

  it("go-sev-guest's report (debug allowed) is contraindicated by the default policy", () => {
    const a = appraise(goSevGuest, strict);
    expect(a.status).toBe('contraindicated');
    expect(codes(a)).toEqual(['appraisal.debug']);
    expect(a.trustworthinessVector['configuration']).toBe(96);
    expect(appraise(goSevGuest, loadPolicy({ ...base, allowDebug: true })).status).toBe('affirming');
  });

  it('the OutOfDate TDX quote passes only when the policy accepts OutOfDate (and then as a warning)', () => {
    // The vector ships TCB info and QE identity but no CRLs: the strict default also says so.
    const refused = appraise(outOfDate, strict);
    expect(refused.status).toBe('contraindicated');
    expect(codes(refused)).toEqual(['appraisal.collateral-missing', 'appraisal.tcb-status']);
    expect(refused.reasons[0]!.message).toContain('pck_crl, root_ca_crl');
    const tolerant = appraise(outOfDate, loadPolicy({ ...base, tdx: { acceptableTcbStatuses: ['UpToDate', 'OutOfDate'] } }));
    expect(tolerant.status).toBe('warning');
    expect(codes(tolerant)).toEqual(['appraisal.tcb-not-uptodate']);
    expect(tolerant.trustworthinessVector['hardware']).toBe(32);
  });

  it('TDX collateral the verdict must rest on is policy (tdx.requiredCollateral)', () => {
    const withoutQe = appraise(tdxV5, strict);
    expect(codes(withoutQe)).toContain('appraisal.collateral-missing');
    expect(withoutQe.reasons.find((r) => r.code === 'appraisal.collateral-missing')!.message).toContain('qe_identity');
    const platformOnly = appraise(tdxV5, loadPolicy({ ...base, tdx: { requiredCollateral: ['tcb_info'] } }));
    expect(codes(platformOnly)).not.toContain('appraisal.collateral-missing');
  });

  it('the VLEK report from VMPL 1 needs VMPL 1 in allowedVmpls', () => {
    expect(codes(appraise(vlek, strict))).toEqual(['appraisal.vmpl']);
    expect(appraise(vlek, strict).status).toBe('contraindicated');
    expect(appraise(vlek, loadPolicy({ ...base, snp: { allowedVmpls: [0, 1] } })).status).toBe('affirming');
  });

  it('measurement allowlists: SNP MEASUREMENT and TDX MRTD', () => {
    const genoaMeasurement = genoa.fields['measurement'] as string;
    const listed = appraise(genoa, loadPolicy({ ...base, snp: { measurements: [genoaMeasurement] } }));
    expect(listed.status).toBe('affirming');
    expect(listed.trustworthinessVector['executables']).toBe(2);
    const other = appraise(genoa, loadPolicy({ ...base, snp: { measurements: ['00'.repeat(48)] } }));
    expect(other.status).toBe('contraindicated');
    expect(codes(other)).toEqual(['appraisal.measurement']);
    expect(other.trustworthinessVector['executables']).toBe(96);
    expect(appraise(genoa, loadPolicy({ ...base, snp: { measurements: [] } })).status).toBe('contraindicated');

    const mrTd = dcapQvl.fields['mr_td'] as string;
    expect(appraise(dcapQvl, loadPolicy({ ...base, tdx: { mrTd: [mrTd] } })).trustworthinessVector['executables']).toBe(2);
    expect(codes(appraise(dcapQvl, loadPolicy({ ...base, tdx: { mrTd: ['ab'.repeat(48)] } })))).toEqual(['appraisal.measurement']);
  });

  it('minimum TCB per product and component (Genoa bl 10 / ucode 84; Turin fmc)', () => {
    expect(appraise(genoa, loadPolicy({ ...base, snp: { minTcb: { Genoa: { bl: 10, ucode: 84 } } } })).status).toBe('affirming');
    const low = appraise(genoa, loadPolicy({ ...base, snp: { minTcb: { Genoa: { ucode: 85 } } } }));
    expect(low.status).toBe('contraindicated');
    expect(low.reasons[0]).toMatchObject({ code: 'appraisal.tcb-below-minimum', message: expect.stringContaining('ucode 84') });
    expect(appraise(genoa, loadPolicy({ ...base, snp: { minTcb: { Milan: { ucode: 250 } } } })).status).toBe('affirming');
    expect(codes(appraise(turin, loadPolicy({ ...base, snp: { minTcb: { Turin: { fmc: 1 } } } })))).toEqual(['appraisal.tcb-below-minimum']);
    expect(codes(appraise(goSevGuest, loadPolicy({ ...base, allowDebug: true, snp: { minTcb: { Milan: { bl: 1 } } } })))).toEqual(['appraisal.tcb-product-unknown']);
  });

  it('required and forbidden guest-policy bits; HOST_DATA allowlist', () => {
    // genoa policy 0x30000: SMT (16) and reserved bit 17 set, bit 20 (single socket) clear.
    expect(appraise(genoa, loadPolicy({ ...base, snp: { requiredPolicyBits: [16, 17], forbiddenPolicyBits: [18, 20] } })).status).toBe('affirming');
    expect(codes(appraise(genoa, loadPolicy({ ...base, snp: { requiredPolicyBits: [20] } })))).toEqual(['appraisal.guest-policy']);
    expect(codes(appraise(genoa, loadPolicy({ ...base, snp: { forbiddenPolicyBits: [16] } })))).toEqual(['appraisal.guest-policy']);
    expect(codes(appraise(genoa, loadPolicy({ ...base, snp: { hostData: ['11'.repeat(32)] } })))).toEqual(['appraisal.host-data']);
  });

  it('TDX configuration: MRCONFIGID and RTMR allowlists, SEPT_VE_DISABLE, debug', () => {
    const tolerant = { acceptableTcbStatuses: ['UpToDate', 'OutOfDate'] };
    const configId = outOfDate.fields['mr_config_id'] as string;
    expect(configId).not.toBe('00'.repeat(48));
    expect(codes(appraise(outOfDate, loadPolicy({ ...base, tdx: { ...tolerant, mrConfigId: [configId] } })))).toEqual(['appraisal.tcb-not-uptodate']);
    expect(codes(appraise(outOfDate, loadPolicy({ ...base, tdx: { ...tolerant, mrConfigId: ['00'.repeat(48)] } })))).toContain('appraisal.mr-config-id');

    const rtmr1 = dcapQvl.fields['rtmr1'] as string;
    expect(appraise(dcapQvl, loadPolicy({ ...base, tdx: { rtmr1: [rtmr1] } })).status).toBe('affirming');
    expect(codes(appraise(dcapQvl, loadPolicy({ ...base, tdx: { rtmr1: ['00'.repeat(48)] } })))).toEqual(['appraisal.measurement']);

    // The rules over the decoded attributes, on the real quote's result with one attribute flipped.
    const attrs = dcapQvl.fields['td_attributes_decoded'] as Record<string, unknown>;
    const noSept = { ...dcapQvl, fields: { ...dcapQvl.fields, td_attributes_decoded: { ...attrs, sept_ve_disable: false } } };
    expect(codes(appraise(noSept, strict))).toEqual(['appraisal.sept-ve-disable']);
    expect(appraise(noSept, loadPolicy({ ...base, tdx: { requireSeptVeDisable: false } })).status).toBe('affirming');
    const debuggable = { ...dcapQvl, fields: { ...dcapQvl.fields, debug: true } };
    expect(codes(appraise(debuggable, strict))).toEqual(['appraisal.debug']);
  });

  it('report data must match the expected binding; Azure binds through the claims user-data', () => {
    const bound = fromHex(genoa.fields['report_data'] as string);
    expect(appraise(genoa, strict, { reportData: bound }).status).toBe('affirming');
    const wrong = appraise(genoa, strict, { reportData: new Uint8Array(64) });
    expect(wrong.status).toBe('contraindicated');
    expect(codes(wrong)).toEqual(['appraisal.report-data-mismatch']);
    expect(appraise(azure, strict, { reportData: new Uint8Array(64) }).status).toBe('affirming'); // its claims' user-data is 64 zero bytes
  });

  it('rejected evidence is contraindicated and carries the verifier reasons', async () => {
    const bad = await verifyVector('snp/negative-bad-vcek-trustee');
    const a = appraise(bad, strict);
    expect(a.status).toBe('contraindicated');
    expect(codes(a)).toContain('appraisal.evidence-rejected');
    expect(a.reasons.length).toBeGreaterThan(1);
    expect(a.trustworthinessVector['instance-identity']).toBe(99);
  });

  it('kinds not in evidenceKinds are contraindicated', () => {
    expect(codes(appraise(dcapQvl, loadPolicy({ ...base, evidenceKinds: ['snp'] })))).toEqual(['appraisal.kind-not-allowed']);
  });
});

describe('simulated evidence', () => {
  const reportData = new Uint8Array(64).fill(9);
  it('is contraindicated unless the policy allows simulation, and never better than warning', async () => {
    const pkg = await sim.tdxEvidence(reportData);
    const trustOn = { amd: sim.amdRoots, intel: sim.intelRoots, allowSimulated: true };
    const accepted = await verifyEvidence(pkg, { trust: trustOn, now: new Date() });
    const rejected = await verifyEvidence(pkg, { trust: { ...trustOn, allowSimulated: false }, now: new Date() });

    const underStrict = appraise(accepted, strict);
    expect(underStrict.status).toBe('contraindicated');
    expect(codes(underStrict)).toEqual(['appraisal.simulated']);
    expect(appraise(rejected, strict).status).toBe('contraindicated');
    expect(codes(appraise(rejected, dev))).toContain('appraisal.simulated');

    const underDev = appraise(accepted, dev, { reportData });
    expect(underDev).toMatchObject({ status: 'warning', tee: 'sim-tdx', policyId: 'attex-dev-simulated' });
    expect(underDev.trustworthinessVector['hardware']).toBe(32);

    const snp = await verifyEvidence(await sim.snpEvidence(reportData), { trust: trustOn, now: new Date() });
    expect(appraise(snp, dev, { reportData }).status).toBe('warning');
    expect(appraise(snp, strict).status).toBe('contraindicated');
  });
});

describe('policy loading', () => {
  const bad = (doc: unknown) => {
    try {
      loadPolicy(doc);
    } catch (err) {
      return err as { code: string; message: string };
    }
    throw new Error('policy was accepted');
  };

  it('refuses unknown keys, naming their JSON path', () => {
    expect(bad({ ...base, snp: { measurment: [] } })).toMatchObject({ code: 'policy.invalid', message: expect.stringContaining('$.snp.measurment: unknown key') });
    expect(bad({ ...base, extra: 1 }).message).toContain('$.extra: unknown key');
  });

  it('refuses wrong types and impossible values with the path', () => {
    expect(bad({ ...base, allowSimulated: 'yes' }).message).toContain('$.allowSimulated');
    expect(bad({ ...base, snp: { allowedVmpls: [4] } }).message).toContain('$.snp.allowedVmpls[0]');
    expect(bad({ ...base, snp: { minTcb: { Genoa: { ucode: 256 } } } }).message).toContain('$.snp.minTcb.Genoa.ucode');
    expect(bad({ ...base, snp: { minTcb: { Milan: { fmc: 1 } } } }).message).toContain('$.snp.minTcb.Milan.fmc');
    expect(bad({ ...base, snp: { measurements: ['ABCD'] } }).message).toContain('$.snp.measurements[0]');
    expect(bad({ ...base, tdx: { acceptableTcbStatuses: ['Revoked'] } }).message).toContain('$.tdx.acceptableTcbStatuses[0]');
    expect(bad({ ...base, snp: { requiredPolicyBits: [19] } }).message).toContain('allowDebug');
    expect(bad({ ...base, snp: { requiredPolicyBits: [16], forbiddenPolicyBits: [16] } }).message).toContain('$.snp.requiredPolicyBits[0]');
    expect(bad({ ...base, evidenceKinds: [] }).message).toContain('$.evidenceKinds');
    expect(bad({ id: 'x' }).message).toMatch(/\$\.(version|evidenceKinds|allowSimulated): required/);
    expect(bad('{ not json').code).toBe('policy.invalid');
    expect(bad([]).code).toBe('policy.invalid');
  });

  it('digest is over canonical JSON: key order does not matter, content does', () => {
    const a = loadPolicy({ ...base, allowDebug: false });
    const b = loadPolicy(JSON.stringify({ allowDebug: false, allowSimulated: false, evidenceKinds: base.evidenceKinds, id: 'test', version: 1 }));
    expect(a.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(b.digest).toBe(a.digest);
    expect(loadPolicy({ ...base, allowDebug: true }).digest).not.toBe(a.digest);
  });

  it('ships a strict default and a dev-simulated policy', () => {
    expect(strict).toMatchObject({ allowSimulated: false, allowDebug: false, snp: { allowedVmpls: [0] }, tdx: { acceptableTcbStatuses: ['UpToDate'] } });
    expect(dev.allowSimulated).toBe(true);
  });
});
