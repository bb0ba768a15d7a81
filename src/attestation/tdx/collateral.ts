/**
 * Typed views of Intel PCS TCB info (TDX, v3) and QE identity (TD_QE, v2), validated field by
 * field from the signed inner object. Throws AttexError `tdx.collateral.malformed` naming the
 * JSON path of the first bad field. Nothing is trusted here: signatures are checked elsewhere.
 */
import { AttexError } from '../../errors/index.ts';

/** Statuses a platform TCB level may carry (Intel PCS TCB info v3). */
export const PLATFORM_STATUSES = new Set([
  'UpToDate', 'SWHardeningNeeded', 'ConfigurationNeeded', 'ConfigurationAndSWHardeningNeeded',
  'OutOfDate', 'OutOfDateConfigurationNeeded', 'Revoked',
]);
/** Statuses of TDX module and QE identity levels. */
export const ENCLAVE_STATUSES = new Set(['UpToDate', 'OutOfDate', 'Revoked']);

export interface PlatformTcbLevel {
  readonly sgx: readonly number[];
  readonly pcesvn: number;
  readonly tdx: readonly number[];
  readonly tcbDate: string;
  readonly tcbStatus: string;
  readonly advisoryIds: readonly string[];
}

export interface IsvTcbLevel {
  readonly isvsvn: number;
  readonly tcbDate: string;
  readonly tcbStatus: string;
  readonly advisoryIds: readonly string[];
}

export interface TdxModuleIdentity {
  readonly id: string;
  readonly mrsigner: Uint8Array;
  readonly attributes: Uint8Array;
  readonly attributesMask: Uint8Array;
  readonly tcbLevels: readonly IsvTcbLevel[];
}

export interface TdxTcbInfo {
  readonly id: string;
  readonly version: number;
  readonly issueDate: Date;
  readonly nextUpdate: Date;
  readonly fmspc: Uint8Array;
  readonly pceId: Uint8Array;
  readonly tcbType: number;
  readonly tcbEvaluationDataNumber: number;
  readonly tdxModule: Omit<TdxModuleIdentity, 'id' | 'tcbLevels'>;
  readonly tdxModuleIdentities: readonly TdxModuleIdentity[];
  readonly tcbLevels: readonly PlatformTcbLevel[];
}

export interface QeIdentity {
  readonly id: string;
  readonly version: number;
  readonly issueDate: Date;
  readonly nextUpdate: Date;
  readonly tcbEvaluationDataNumber: number;
  /** u32 values, as the hex strings print them. */
  readonly miscselect: number;
  readonly miscselectMask: number;
  readonly attributes: Uint8Array;
  readonly attributesMask: Uint8Array;
  readonly mrsigner: Uint8Array;
  readonly isvprodid: number;
  readonly tcbLevels: readonly IsvTcbLevel[];
}

function bad(path: string, message: string): never {
  throw new AttexError('tdx.collateral.malformed', `${path}: ${message}`);
}

function obj(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(path, 'expected an object');
  return v as Record<string, unknown>;
}

function arr(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) bad(path, 'expected an array');
  return v;
}

function str(v: unknown, path: string): string {
  if (typeof v !== 'string') bad(path, 'expected a string');
  return v;
}

function uint(v: unknown, path: string, max = 0xffffffff): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) bad(path, `expected an integer 0..${max}`);
  return v;
}

function hex(v: unknown, bytes: number, path: string): Uint8Array {
  const s = str(v, path);
  if (s.length !== bytes * 2 || !/^[0-9a-fA-F]*$/.test(s)) bad(path, `expected ${bytes} bytes of hex`);
  return new Uint8Array(Buffer.from(s, 'hex'));
}

function date(v: unknown, path: string): Date {
  const s = str(v, path);
  const d = new Date(s);
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(s) || Number.isNaN(d.getTime())) bad(path, 'expected an ISO 8601 UTC date');
  return d;
}

function status(v: unknown, allowed: ReadonlySet<string>, path: string): string {
  const s = str(v, path);
  if (!allowed.has(s)) bad(path, `unknown TCB status "${s.slice(0, 64)}"`);
  return s;
}

function advisories(v: unknown, path: string): string[] {
  if (v === undefined) return [];
  return arr(v, path).map((a, i) => str(a, `${path}[${i}]`));
}

function svnComponents(v: unknown, path: string): number[] {
  const list = arr(v, path);
  if (list.length !== 16) bad(path, 'expected 16 components');
  return list.map((c, i) => uint(obj(c, `${path}[${i}]`).svn, `${path}[${i}].svn`, 255));
}

function isvLevels(v: unknown, path: string): IsvTcbLevel[] {
  return arr(v, path).map((l, i) => {
    const p = `${path}[${i}]`;
    const level = obj(l, p);
    return {
      isvsvn: uint(obj(level.tcb, `${p}.tcb`).isvsvn, `${p}.tcb.isvsvn`, 0xffff),
      tcbDate: str(level.tcbDate, `${p}.tcbDate`),
      tcbStatus: status(level.tcbStatus, ENCLAVE_STATUSES, `${p}.tcbStatus`),
      advisoryIds: advisories(level.advisoryIDs, `${p}.advisoryIDs`),
    };
  });
}

function moduleSigner(v: Record<string, unknown>, path: string) {
  return {
    mrsigner: hex(v.mrsigner, 48, `${path}.mrsigner`),
    attributes: hex(v.attributes, 8, `${path}.attributes`),
    attributesMask: hex(v.attributesMask, 8, `${path}.attributesMask`),
  };
}

/** Validate a TDX TCB info object (the signed `tcbInfo` member). */
export function parseTdxTcbInfo(value: unknown): TdxTcbInfo {
  const t = obj(value, 'tcbInfo');
  const id = str(t.id, 'tcbInfo.id');
  if (id !== 'TDX') bad('tcbInfo.id', `"${id.slice(0, 32)}" is not TDX TCB info`);
  const version = uint(t.version, 'tcbInfo.version');
  if (version !== 3) bad('tcbInfo.version', `version ${version} is not 3`);
  const identities = t.tdxModuleIdentities === undefined ? [] : arr(t.tdxModuleIdentities, 'tcbInfo.tdxModuleIdentities');
  return {
    id,
    version,
    issueDate: date(t.issueDate, 'tcbInfo.issueDate'),
    nextUpdate: date(t.nextUpdate, 'tcbInfo.nextUpdate'),
    fmspc: hex(t.fmspc, 6, 'tcbInfo.fmspc'),
    pceId: hex(t.pceId, 2, 'tcbInfo.pceId'),
    tcbType: uint(t.tcbType, 'tcbInfo.tcbType'),
    tcbEvaluationDataNumber: uint(t.tcbEvaluationDataNumber, 'tcbInfo.tcbEvaluationDataNumber'),
    tdxModule: moduleSigner(obj(t.tdxModule, 'tcbInfo.tdxModule'), 'tcbInfo.tdxModule'),
    tdxModuleIdentities: identities.map((m, i) => {
      const p = `tcbInfo.tdxModuleIdentities[${i}]`;
      const mod = obj(m, p);
      return { id: str(mod.id, `${p}.id`), ...moduleSigner(mod, p), tcbLevels: isvLevels(mod.tcbLevels, `${p}.tcbLevels`) };
    }),
    tcbLevels: arr(t.tcbLevels, 'tcbInfo.tcbLevels').map((l, i) => {
      const p = `tcbInfo.tcbLevels[${i}]`;
      const level = obj(l, p);
      const tcb = obj(level.tcb, `${p}.tcb`);
      return {
        sgx: svnComponents(tcb.sgxtcbcomponents, `${p}.tcb.sgxtcbcomponents`),
        pcesvn: uint(tcb.pcesvn, `${p}.tcb.pcesvn`, 0xffff),
        tdx: svnComponents(tcb.tdxtcbcomponents, `${p}.tcb.tdxtcbcomponents`),
        tcbDate: str(level.tcbDate, `${p}.tcbDate`),
        tcbStatus: status(level.tcbStatus, PLATFORM_STATUSES, `${p}.tcbStatus`),
        advisoryIds: advisories(level.advisoryIDs, `${p}.advisoryIDs`),
      };
    }),
  };
}

/** Validate a TD QE identity object (the signed `enclaveIdentity` member). */
export function parseQeIdentity(value: unknown): QeIdentity {
  const q = obj(value, 'enclaveIdentity');
  const id = str(q.id, 'enclaveIdentity.id');
  if (id !== 'TD_QE') bad('enclaveIdentity.id', `"${id.slice(0, 32)}" is not the TD QE identity`);
  const version = uint(q.version, 'enclaveIdentity.version');
  if (version !== 2) bad('enclaveIdentity.version', `version ${version} is not 2`);
  const u32hex = (v: unknown, path: string) => new DataView(hex(v, 4, path).buffer).getUint32(0, false);
  return {
    id,
    version,
    issueDate: date(q.issueDate, 'enclaveIdentity.issueDate'),
    nextUpdate: date(q.nextUpdate, 'enclaveIdentity.nextUpdate'),
    tcbEvaluationDataNumber: uint(q.tcbEvaluationDataNumber, 'enclaveIdentity.tcbEvaluationDataNumber'),
    miscselect: u32hex(q.miscselect, 'enclaveIdentity.miscselect'),
    miscselectMask: u32hex(q.miscselectMask, 'enclaveIdentity.miscselectMask'),
    attributes: hex(q.attributes, 16, 'enclaveIdentity.attributes'),
    attributesMask: hex(q.attributesMask, 16, 'enclaveIdentity.attributesMask'),
    mrsigner: hex(q.mrsigner, 32, 'enclaveIdentity.mrsigner'),
    isvprodid: uint(q.isvprodid, 'enclaveIdentity.isvprodid', 0xffff),
    tcbLevels: isvLevels(q.tcbLevels, 'enclaveIdentity.tcbLevels'),
  };
}
