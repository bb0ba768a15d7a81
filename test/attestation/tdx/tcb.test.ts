import { describe, expect, it } from 'vitest';
import {
  evaluateQeIdentity, evaluateTdxTcb, extractSignedJson, parsePckChain, parseQeIdentity, parseTdxQuote, parseTdxTcbInfo,
  type QeIdentity, type SgxExtension, type TdReport, type TdxTcbInfo,
} from '../../../src/attestation/tdx/index.ts';
import { AttexError } from '../../../src/errors/index.ts';
import { vector } from './vectors.ts';

// Real v5 TDX 1.5 quote + its TCB info (FMSPC 90c06f000000), varied one rule at a time.
const v5 = vector('v5-go-tdx-guest');
const quote = parseTdxQuote(v5.quote);
const sgx = parsePckChain(quote.pckChainPem).sgx!;
const info = parseTdxTcbInfo(extractSignedJson(v5.collateral.tcbInfo!, 'tcbInfo', 'TCB info').value);
const dcap = vector('v4-dcap-qvl');
const qeIdentity = parseQeIdentity(extractSignedJson(dcap.collateral.qeIdentity!, 'enclaveIdentity', 'QE identity').value);
const dcapQe = parseTdxQuote(dcap.quote).qeReport;

function report(teeTcbSvn: number[], teeTcbSvn2?: number[]): TdReport {
  const pad = (a: number[]) => Uint8Array.from({ length: 16 }, (_, i) => a[i] ?? 0);
  return { ...quote.report, teeTcbSvn: pad(teeTcbSvn), teeTcbSvn2: teeTcbSvn2 === undefined ? undefined : pad(teeTcbSvn2) };
}

function withModuleLevels(levels: TdxTcbInfo['tdxModuleIdentities'][number]['tcbLevels']): TdxTcbInfo {
  return { ...info, tdxModuleIdentities: info.tdxModuleIdentities.map((m) => (m.id === 'TDX_01' ? { ...m, tcbLevels: levels } : m)) };
}

const upToDateQe = { reasons: [], status: 'UpToDate', advisoryIds: [] };

describe('extractSignedJson', () => {
  it('refuses unsigned members beside the signed one, and escaped member names', () => {
    const body = Buffer.from(v5.collateral.tcbInfo!).toString('utf8');
    const variants = [
      [body.replace(/^\{/, '{"x":1,'), /unexpected top-level member "x"/],
      [body.replace(/\}\s*$/, ',"junk":[1,2,3]}'), /unexpected top-level member "junk"/],
      [body.replace('"tcbInfo"', '"tcb\\u0049nfo"'), /member "tcbInfo" is written with escapes/],
    ] as const;
    for (const [text, message] of variants) {
      expect(text).not.toBe(body);
      expect(() => extractSignedJson(new TextEncoder().encode(text), 'tcbInfo', 'TCB info')).toThrow(message);
    }
  });
});

describe('evaluateTdxTcb (Intel QVL rules)', () => {
  it('the real quote is UpToDate with no advisories', () => {
    expect(evaluateTdxTcb(info, sgx, quote.report, null)).toEqual({ status: 'UpToDate', advisoryIds: [], reasons: [] });
  });

  it('takes the first level the PCK satisfies and collects its advisories', () => {
    const older: SgxExtension = { ...sgx, tcbCompSvns: [2, 2, 2, 2, 3, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0] };
    const r = evaluateTdxTcb(info, older, report([11, 1, 2]), null);
    expect(r.status).toBe('OutOfDate');
    expect(r.advisoryIds).toEqual(['INTEL-SA-01036', 'INTEL-SA-01079', 'INTEL-SA-01099', 'INTEL-SA-01103', 'INTEL-SA-01111']);
  });

  it('no level for the PCK gives "no matching TCB level"', () => {
    const r = evaluateTdxTcb(info, { ...sgx, pceSvn: 4 }, quote.report, null);
    expect(r.status).toBe('no matching TCB level');
    expect(r.reasons.map((x) => x.code)).toEqual(['tdx.tcb.no-matching-level']);
  });

  it('skips tee_tcb_svn bytes 0-1 when byte 1 names a module, compares all 16 otherwise', () => {
    // Byte 0 = 1 is far below every level's tdx[0] = 5, but it is the module's SVN here.
    const moduleOutOfDate = evaluateTdxTcb(info, sgx, report([2, 1, 3]), null);
    expect(moduleOutOfDate.status).toBe('OutOfDate');
    // With byte 1 = 0 (no module version) byte 0 is compared: 1 < 5 matches no level.
    expect(evaluateTdxTcb(info, sgx, report([1, 0, 3]), null).status).toBe('no matching TCB level');
  });

  it('an OutOfDate TDX module turns UpToDate into OutOfDate and adds its advisories', () => {
    const r = evaluateTdxTcb(info, sgx, report([4, 1, 3]), null);
    expect(r.status).toBe('OutOfDate');
    expect(r.advisoryIds).toEqual(['INTEL-SA-01036', 'INTEL-SA-01099']);
    expect(r.reasons).toEqual([]);
  });

  it('a Revoked TDX module revokes', () => {
    const revoked = withModuleLevels([{ isvsvn: 1, tcbDate: '2024-01-01T00:00:00Z', tcbStatus: 'Revoked', advisoryIds: [] }]);
    const r = evaluateTdxTcb(revoked, sgx, quote.report, null);
    expect(r.status).toBe('Revoked');
    expect(r.reasons.map((x) => x.code)).toEqual(['tdx.tcb.revoked']);
  });

  it('a module ISVSVN below every level, or an unknown module version, rejects', () => {
    expect(evaluateTdxTcb(info, sgx, report([1, 1, 3]), null).reasons.map((x) => x.code)).toEqual(['tdx.tcb.no-matching-level']);
    expect(evaluateTdxTcb(info, sgx, report([11, 2, 3]), null).reasons.map((x) => x.code)).toEqual(['tdx.tcb.module']);
  });

  it('MRSIGNERSEAM and SEAMATTRIBUTES must match the module identity', () => {
    const signer = { ...quote.report, mrSignerSeam: new Uint8Array(48).fill(1) };
    expect(evaluateTdxTcb(info, sgx, signer, null).reasons.map((x) => x.code)).toEqual(['tdx.tcb.module']);
    const attrs = { ...quote.report, seamAttributes: Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 1) };
    expect(evaluateTdxTcb(info, sgx, attrs, null).reasons.map((x) => x.code)).toEqual(['tdx.tcb.module']);
  });

  it('TDX 1.5: TD relaunch advised when only the module is behind and tee_tcb_svn2 has the latest', () => {
    expect(evaluateTdxTcb(info, sgx, report([4, 1, 3], [13, 1, 4]), null).status).toBe('TDRelaunchAdvised');
    expect(evaluateTdxTcb(info, sgx, report([4, 1, 3], [5, 1, 4]), null).status).toBe('OutOfDate');
  });

  it('folds in the QE identity status: OutOfDate QE makes UpToDate OutOfDate, Revoked QE revokes', () => {
    const qeOld = { reasons: [], status: 'OutOfDate', advisoryIds: ['INTEL-SA-00001'] };
    const r = evaluateTdxTcb(info, sgx, quote.report, qeOld);
    expect(r.status).toBe('OutOfDate');
    expect(r.advisoryIds).toEqual(['INTEL-SA-00001']);
    expect(evaluateTdxTcb(info, sgx, quote.report, upToDateQe).status).toBe('UpToDate');
    const configNeeded = { ...info, tcbLevels: info.tcbLevels.map((l, i) => (i === 0 ? { ...l, tcbStatus: 'ConfigurationNeeded' } : l)) };
    expect(evaluateTdxTcb(configNeeded, sgx, quote.report, qeOld).status).toBe('OutOfDateConfigurationNeeded');
    expect(evaluateTdxTcb(info, sgx, quote.report, { reasons: [], status: 'Revoked', advisoryIds: [] }).status).toBe('Revoked');
  });
});

describe('evaluateQeIdentity', () => {
  it('the real QE matches its identity at an UpToDate level', () => {
    expect(evaluateQeIdentity(qeIdentity, dcapQe)).toEqual({ reasons: [], status: 'UpToDate', advisoryIds: [] });
  });

  it('MRSIGNER, ISVPRODID and masked ATTRIBUTES must match; ISVSVN must reach a level', () => {
    const other: QeIdentity = { ...qeIdentity, mrsigner: new Uint8Array(32) };
    expect(evaluateQeIdentity(other, dcapQe).reasons.map((x) => x.code)).toEqual(['tdx.qe-identity']);
    expect(evaluateQeIdentity({ ...qeIdentity, isvprodid: 1 }, dcapQe).reasons.map((x) => x.code)).toEqual(['tdx.qe-identity']);
    // Bit 2 of byte 0 is masked out (FB), so flipping it in the report still matches.
    const attrs = dcapQe.attributes.slice();
    attrs[0] = attrs[0]! ^ 0x04;
    expect(evaluateQeIdentity(qeIdentity, { ...dcapQe, attributes: attrs }).status).toBe('UpToDate');
    attrs[0] = attrs[0]! ^ 0x01;
    expect(evaluateQeIdentity(qeIdentity, { ...dcapQe, attributes: attrs }).status).toBeNull();
    expect(evaluateQeIdentity(qeIdentity, { ...dcapQe, isvSvn: 3 }).reasons[0]!.message).toMatch(/ISVSVN 3/);
  });
});

describe('collateral parsing', () => {
  it('rejects SGX TCB info, unknown statuses and missing fields with the JSON path', () => {
    const raw = extractSignedJson(v5.collateral.tcbInfo!, 'tcbInfo', 'TCB info').value as Record<string, unknown>;
    const attempt = (value: unknown) => {
      try {
        parseTdxTcbInfo(value);
      } catch (err) {
        expect(err).toBeInstanceOf(AttexError);
        expect((err as AttexError).code).toBe('tdx.collateral.malformed');
        return (err as AttexError).message;
      }
      return 'parsed';
    };
    expect(attempt({ ...raw, id: 'SGX' })).toMatch(/tcbInfo.id/);
    expect(attempt({ ...raw, fmspc: 'zz' })).toMatch(/tcbInfo.fmspc/);
    const levels = (raw.tcbLevels as Record<string, unknown>[]).map((l, i) => (i === 1 ? { ...l, tcbStatus: 'Fine' } : l));
    expect(attempt({ ...raw, tcbLevels: levels })).toMatch(/tcbInfo.tcbLevels\[1\].tcbStatus/);
    expect(attempt({ ...raw, tdxModule: undefined })).toMatch(/tcbInfo.tdxModule/);
  });
});
