/**
 * The handful of TPM 2.0 commands the Azure vTPM provider needs, encoded by hand (TPM 2.0
 * Library Part 3, big-endian): GetCapability, NV_ReadPublic, NV_Read, NV_Write, NV_DefineSpace.
 * Authorisation is the empty-password session TPM_RS_PW, which is what Azure's NV indexes take.
 */
import { AttexError } from '../../errors/index.ts';
import { concatBytes } from '../../util/index.ts';
import type { TpmTransport } from './tpm-transport.ts';

const ST_NO_SESSIONS = 0x8001;
const ST_SESSIONS = 0x8002;
const RS_PW = 0x40000009;
export const RH_OWNER = 0x40000001;
const CC = { NV_DefineSpace: 0x12a, NV_Write: 0x137, NV_Read: 0x14e, NV_ReadPublic: 0x169, GetCapability: 0x17a } as const;
const CAP_TPM_PROPERTIES = 6;
export const PT_NV_BUFFER_MAX = 0x100 + 44;
const ALG_SHA256 = 0x000b;

/** NV attributes: owner/auth read and write, no dictionary-attack lockout. */
export const NV_ATTRS_OWNER_RW = (1 << 1) | (1 << 2) | (1 << 17) | (1 << 18) | (1 << 25);

export class TpmResponseError extends AttexError {
  readonly rc: number;
  constructor(command: string, rc: number) {
    super('provider.tpm', `TPM2_${command} failed with response code 0x${rc.toString(16).padStart(3, '0')}`, { details: { rc } });
    this.rc = rc;
  }
  /** TPM_RC_HANDLE (format-1 error 0x0B): e.g. the NV index does not exist. */
  get isHandleError(): boolean {
    return (this.rc & 0x80) !== 0 && (this.rc & 0x3f) === 0x0b;
  }
}

function u16(n: number): Uint8Array {
  return Uint8Array.of((n >>> 8) & 0xff, n & 0xff);
}
function u32(n: number): Uint8Array {
  return Uint8Array.of((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}
function tpm2b(data: Uint8Array): Uint8Array {
  return concatBytes(u16(data.length), data);
}

const PASSWORD_SESSION = concatBytes(u32(RS_PW), u16(0), Uint8Array.of(0), u16(0));

function command(cc: number, handles: number[], params: Uint8Array, withSession: boolean): Uint8Array {
  const handleBytes = concatBytes(...handles.map(u32));
  const auth = withSession ? concatBytes(u32(PASSWORD_SESSION.length), PASSWORD_SESSION) : new Uint8Array(0);
  const body = concatBytes(handleBytes, auth, params);
  return concatBytes(u16(withSession ? ST_SESSIONS : ST_NO_SESSIONS), u32(10 + body.length), u32(cc), body);
}

/** A bounds-checked reader over a response; any overrun is a malformed response. */
class Reader {
  private at: number;
  private readonly view: DataView;
  private readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array, start: number) {
    this.bytes = bytes;
    this.at = start;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  private need(n: number): void {
    if (this.at + n > this.bytes.length) throw new AttexError('provider.tpm', 'TPM response is shorter than its structure');
  }
  u8(): number { this.need(1); return this.bytes[this.at++]!; }
  u16(): number { this.need(2); const v = this.view.getUint16(this.at); this.at += 2; return v; }
  u32(): number { this.need(4); const v = this.view.getUint32(this.at); this.at += 4; return v; }
  bytesOf(n: number): Uint8Array { this.need(n); const v = this.bytes.slice(this.at, this.at + n); this.at += n; return v; }
  tpm2b(): Uint8Array { return this.bytesOf(this.u16()); }
}

async function run(t: TpmTransport, name: string, cmd: Uint8Array, withSession: boolean): Promise<Reader> {
  const res = await t.transmit(cmd);
  if (res.length < 10) throw new AttexError('provider.tpm', `TPM2_${name}: response of ${res.length} bytes`);
  const r = new Reader(res, 0);
  r.u16();
  const size = r.u32();
  if (size !== res.length) throw new AttexError('provider.tpm', `TPM2_${name}: response size field ${size} != ${res.length}`);
  const rc = r.u32();
  if (rc !== 0) throw new TpmResponseError(name, rc);
  if (withSession) r.u32(); // parameterSize
  return r;
}

export async function getTpmProperty(t: TpmTransport, property: number): Promise<number> {
  const r = await run(t, 'GetCapability', command(CC.GetCapability, [], concatBytes(u32(CAP_TPM_PROPERTIES), u32(property), u32(1)), false), false);
  r.u8(); // moreData
  if (r.u32() !== CAP_TPM_PROPERTIES) throw new AttexError('provider.tpm', 'TPM2_GetCapability answered a different capability');
  const count = r.u32();
  for (let i = 0; i < count; i++) {
    const p = r.u32();
    const v = r.u32();
    if (p === property) return v;
  }
  throw new AttexError('provider.tpm', `TPM does not report property 0x${property.toString(16)}`);
}

export interface NvPublic {
  readonly index: number;
  readonly attributes: number;
  readonly dataSize: number;
}

export async function nvReadPublic(t: TpmTransport, index: number): Promise<NvPublic> {
  const r = await run(t, 'NV_ReadPublic', command(CC.NV_ReadPublic, [index], new Uint8Array(0), false), false);
  r.u16(); // size of TPMS_NV_PUBLIC
  const got = r.u32();
  r.u16(); // nameAlg
  const attributes = r.u32();
  r.tpm2b(); // authPolicy
  const dataSize = r.u16();
  if (got !== index) throw new AttexError('provider.tpm', 'TPM2_NV_ReadPublic answered for a different index');
  return { index, attributes, dataSize };
}

/** Read `size` bytes from `offset` in chunks of at most `maxChunk` (the TPM's NV buffer). */
export async function nvRead(t: TpmTransport, index: number, size: number, maxChunk: number, authHandle = RH_OWNER): Promise<Uint8Array> {
  if (maxChunk < 1) throw new AttexError('provider.tpm', 'TPM NV buffer size must be positive');
  const out = new Uint8Array(size);
  for (let offset = 0; offset < size; ) {
    const want = Math.min(maxChunk, size - offset);
    const r = await run(t, 'NV_Read', command(CC.NV_Read, [authHandle, index], concatBytes(u16(want), u16(offset)), true), true);
    const data = r.tpm2b();
    if (data.length !== want) throw new AttexError('provider.tpm', `TPM2_NV_Read returned ${data.length} bytes, asked for ${want}`);
    out.set(data, offset);
    offset += want;
  }
  return out;
}

export async function nvWrite(t: TpmTransport, index: number, data: Uint8Array, maxChunk: number, authHandle = RH_OWNER): Promise<void> {
  if (maxChunk < 1) throw new AttexError('provider.tpm', 'TPM NV buffer size must be positive');
  for (let offset = 0; offset < data.length; ) {
    const chunk = data.subarray(offset, offset + maxChunk);
    await run(t, 'NV_Write', command(CC.NV_Write, [authHandle, index], concatBytes(tpm2b(chunk), u16(offset)), true), true);
    offset += chunk.length;
  }
}

export async function nvDefineSpace(t: TpmTransport, index: number, dataSize: number, attributes = NV_ATTRS_OWNER_RW): Promise<void> {
  const nvPublic = concatBytes(u32(index), u16(ALG_SHA256), u32(attributes), u16(0), u16(dataSize));
  await run(t, 'NV_DefineSpace', command(CC.NV_DefineSpace, [RH_OWNER], concatBytes(tpm2b(new Uint8Array(0)), tpm2b(nvPublic)), true), true);
}
