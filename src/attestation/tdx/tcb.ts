/**
 * TCB status by Intel's quote verification rules (QVL), re-expressed:
 *
 * 1. Platform level: the first TCB level whose SGX component SVNs and PCESVN are all <= the PCK
 *    certificate's and whose tdxtcbcomponents are all <= tee_tcb_svn (bytes 0 and 1 skipped when
 *    tee_tcb_svn[1] > 0, because they then name the TDX module, checked in step 2).
 * 2. TDX module: for tee_tcb_svn[1] = v > 0, identity "TDX_%02X" of tdxModuleIdentities, first
 *    level with isvsvn <= tee_tcb_svn[0]; its MRSIGNER/attributes (else tcbInfo.tdxModule's when
 *    v = 0) must match MRSIGNERSEAM / SEAMATTRIBUTES under the mask. An OutOfDate module turns
 *    UpToDate/SWHardeningNeeded into OutOfDate and the Configuration* statuses into
 *    OutOfDateConfigurationNeeded; a Revoked module revokes.
 * 3. TDX 1.5 reports: TD relaunch advised when only the module is out of date and tee_tcb_svn2
 *    already carries the latest module and SEAM loader.
 * 4. QE identity: its status folds in the same way as the module's.
 */
import type { Reason } from '../../errors/index.ts';
import { bytesEqual, toHex } from '../../util/index.ts';
import type { IsvTcbLevel, PlatformTcbLevel, QeIdentity, TdxModuleIdentity, TdxTcbInfo } from './collateral.ts';
import type { SgxExtension } from './pck.ts';
import type { QeReport, TdReport } from './quote.ts';

export const NO_MATCHING_LEVEL = 'no matching TCB level';

export interface QeEvaluation {
  readonly reasons: Reason[];
  /** Status of the matched QE identity level; null when the QE does not match the identity. */
  readonly status: string | null;
  readonly advisoryIds: readonly string[];
}

export interface TcbEvaluation {
  /** Intel status string, or NO_MATCHING_LEVEL. */
  readonly status: string;
  readonly advisoryIds: readonly string[];
  /** Why the status makes the quote unacceptable (empty when it is acceptable). */
  readonly reasons: Reason[];
}

function masked(a: Uint8Array, mask: Uint8Array): Uint8Array {
  return a.map((b, i) => b & (mask[i] ?? 0));
}

/** Compare the QE report with the TD QE identity and find its ISVSVN level. */
export function evaluateQeIdentity(identity: QeIdentity, qe: QeReport): QeEvaluation {
  const reasons: Reason[] = [];
  const fail = (message: string) => reasons.push({ code: 'tdx.qe-identity', message });
  if (!bytesEqual(qe.mrSigner, identity.mrsigner)) fail(`QE MRSIGNER ${toHex(qe.mrSigner)} is not the identity's`);
  if (qe.isvProdId !== identity.isvprodid) fail(`QE ISVPRODID ${qe.isvProdId} is not ${identity.isvprodid}`);
  const misc = new DataView(qe.miscSelect.buffer, qe.miscSelect.byteOffset, 4).getUint32(0, true);
  if (((misc & identity.miscselectMask) >>> 0) !== ((identity.miscselect & identity.miscselectMask) >>> 0)) {
    fail('QE MISCSELECT does not match the identity under its mask');
  }
  if (!bytesEqual(masked(qe.attributes, identity.attributesMask), masked(identity.attributes, identity.attributesMask))) {
    fail('QE ATTRIBUTES do not match the identity under its mask');
  }
  if (reasons.length > 0) return { reasons, status: null, advisoryIds: [] };
  const level = identity.tcbLevels.find((l) => qe.isvSvn >= l.isvsvn);
  if (level === undefined) {
    fail(`QE ISVSVN ${qe.isvSvn} is below every QE identity TCB level`);
    return { reasons, status: null, advisoryIds: [] };
  }
  if (level.tcbStatus === 'Revoked') reasons.push({ code: 'tdx.tcb.revoked', message: `QE ISVSVN ${qe.isvSvn} is revoked` });
  return { reasons, status: level.tcbStatus, advisoryIds: level.advisoryIds };
}

function tdxComponentsOk(teeTcbSvn: Uint8Array, level: PlatformTcbLevel): boolean {
  for (let i = teeTcbSvn[1]! > 0 ? 2 : 0; i < 16; i++) if (teeTcbSvn[i]! < level.tdx[i]!) return false;
  return true;
}

function sgxComponentsOk(sgx: SgxExtension, level: PlatformTcbLevel): boolean {
  for (let i = 0; i < 16; i++) if (sgx.tcbCompSvns[i]! < level.sgx[i]!) return false;
  return sgx.pceSvn >= level.pcesvn;
}

function moduleIdentityId(version: number): string {
  return `TDX_${version.toString(16).toUpperCase().padStart(2, '0')}`;
}

function findModuleIdentity(info: TdxTcbInfo, version: number): TdxModuleIdentity | undefined {
  const id = moduleIdentityId(version);
  return info.tdxModuleIdentities.find((m) => m.id.toUpperCase() === id);
}

const CONFIG_NEEDED = new Set([
  'ConfigurationNeeded', 'OutOfDateConfigurationNeeded', 'ConfigurationAndSWHardeningNeeded', 'TDRelaunchAdvisedConfigurationNeeded',
]);

/** Fold an OutOfDate / Revoked module or QE status into the platform status. */
function converge(platform: string, other: string | null): string {
  if (other === 'Revoked') return 'Revoked';
  if (other === 'OutOfDate') {
    if (platform === 'UpToDate' || platform === 'SWHardeningNeeded') return 'OutOfDate';
    if (platform === 'ConfigurationNeeded' || platform === 'ConfigurationAndSWHardeningNeeded') return 'OutOfDateConfigurationNeeded';
  }
  return platform;
}

function noMatch(message: string): TcbEvaluation {
  return { status: NO_MATCHING_LEVEL, advisoryIds: [], reasons: [{ code: 'tdx.tcb.no-matching-level', message }] };
}

/** TD relaunch advice for TDX 1.5 reports (QVL's relaunch check); returns the status to use. */
function relaunchStatus(
  info: TdxTcbInfo, report: TdReport, sgxStatus: string, tdxStatus: string, moduleStatus: string | null, qeStatus: string | null,
): string | TcbEvaluation {
  const svn2 = report.teeTcbSvn2;
  if (svn2 === undefined || qeStatus === 'OutOfDate' || qeStatus === 'Revoked') return tdxStatus;
  if (!['UpToDate', 'SWHardeningNeeded', 'ConfigurationNeeded', 'ConfigurationAndSWHardeningNeeded'].includes(sgxStatus)) return tdxStatus;
  if (tdxStatus !== 'OutOfDate' && tdxStatus !== 'OutOfDateConfigurationNeeded') return tdxStatus;
  if (moduleStatus !== 'OutOfDate') return tdxStatus;
  const latest = info.tcbLevels[0]!;
  let latestModuleSvn = latest.tdx[0]!;
  if (svn2[1]! > 0) {
    const identity = findModuleIdentity(info, svn2[1]!);
    if (identity === undefined) {
      return { status: NO_MATCHING_LEVEL, advisoryIds: [], reasons: [{ code: 'tdx.tcb.module', message: `no TDX module identity ${moduleIdentityId(svn2[1]!)} for tee_tcb_svn2` }] };
    }
    const top = identity.tcbLevels[0];
    if (top === undefined) return noMatch(`TDX module identity ${identity.id} has no TCB level`);
    latestModuleSvn = top.isvsvn;
  }
  if (svn2[0]! >= latestModuleSvn && svn2[2]! >= latest.tdx[2]!) {
    return CONFIG_NEEDED.has(sgxStatus) || CONFIG_NEEDED.has(tdxStatus) ? 'TDRelaunchAdvisedConfigurationNeeded' : 'TDRelaunchAdvised';
  }
  return tdxStatus;
}

/** Evaluate the platform TCB of a TD (PCK SGX extension + TD report) against TDX TCB info. */
export function evaluateTdxTcb(info: TdxTcbInfo, sgx: SgxExtension, report: TdReport, qe: QeEvaluation | null): TcbEvaluation {
  const teeTcbSvn = report.teeTcbSvn;
  let sgxLevel: PlatformTcbLevel | undefined;
  let tdxLevel: PlatformTcbLevel | undefined;
  for (const level of info.tcbLevels) {
    if (!sgxComponentsOk(sgx, level)) continue;
    sgxLevel ??= level;
    if (tdxComponentsOk(teeTcbSvn, level)) {
      tdxLevel = level;
      break;
    }
  }
  if (sgxLevel === undefined) return noMatch('no TCB level matches the PCK certificate (SGX component SVNs / PCESVN)');
  if (tdxLevel === undefined) return noMatch(`no TCB level matches the TD's tee_tcb_svn ${toHex(teeTcbSvn)}`);

  // TDX module: identity by version, signer and attributes, then its own TCB level.
  const version = teeTcbSvn[1]!;
  const isvsvn = teeTcbSvn[0]!;
  const reasons: Reason[] = [];
  let signer: Omit<TdxModuleIdentity, 'id' | 'tcbLevels'> = info.tdxModule;
  let moduleLevel: IsvTcbLevel | undefined;
  if (version > 0) {
    const identity = findModuleIdentity(info, version);
    if (identity === undefined) {
      return { status: NO_MATCHING_LEVEL, advisoryIds: [], reasons: [{ code: 'tdx.tcb.module', message: `TCB info has no TDX module identity ${moduleIdentityId(version)}` }] };
    }
    signer = identity;
    moduleLevel = identity.tcbLevels.find((l) => isvsvn >= l.isvsvn);
    if (moduleLevel === undefined) return noMatch(`TDX module ISVSVN ${isvsvn} is below every level of ${identity.id}`);
  }
  if (!bytesEqual(report.mrSignerSeam, signer.mrsigner)) {
    reasons.push({ code: 'tdx.tcb.module', message: 'MRSIGNERSEAM does not match the TDX module identity' });
  }
  if (!bytesEqual(masked(report.seamAttributes, signer.attributesMask), masked(signer.attributes, signer.attributesMask))) {
    reasons.push({ code: 'tdx.tcb.module', message: 'SEAMATTRIBUTES do not match the TDX module identity under its mask' });
  }
  const moduleStatus = moduleLevel?.tcbStatus ?? null;
  let status = converge(tdxLevel.tcbStatus, moduleStatus);
  if (status !== 'Revoked') {
    const relaunch = relaunchStatus(info, report, sgxLevel.tcbStatus, status, moduleStatus, qe?.status ?? null);
    if (typeof relaunch !== 'string') return { ...relaunch, reasons: [...reasons, ...relaunch.reasons] };
    status = relaunch;
  }
  status = converge(status, qe?.status ?? null);
  // A revoked QE already carries its own reason from evaluateQeIdentity.
  if (status === 'Revoked' && qe?.status !== 'Revoked') {
    reasons.push({ code: 'tdx.tcb.revoked', message: 'the TCB level of this platform or TDX module is revoked' });
  }

  const advisoryIds = [...new Set([...tdxLevel.advisoryIds, ...(moduleLevel?.advisoryIds ?? []), ...(qe?.advisoryIds ?? [])])];
  return { status, advisoryIds, reasons };
}
