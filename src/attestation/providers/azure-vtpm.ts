/**
 * Evidence from an Azure confidential VM's vTPM. The paravisor (HCL) keeps an HCL report in NV
 * index 0x01400001: an SNP report whose report_data binds runtime claims, and those claims carry
 * the 64 bytes last written to NV index 0x01400002. So: write our report data to 0x01400002,
 * read 0x01400001 back (size from the TPM, in chunks of the TPM's NV buffer), and check that its
 * claims carry our bytes. The VCEK comes from Azure's IMDS (THIM) unless the caller supplies it.
 */
import { AttexError } from '../../errors/index.ts';
import { readCapped, toHex } from '../../util/index.ts';
import { type EvidencePackage, makeEvidencePackage } from '../evidence/package.ts';
import { checkReportData } from './errors.ts';
import type { EvidenceProvider } from './provider.ts';
import { getTpmProperty, nvDefineSpace, nvRead, nvReadPublic, nvWrite, PT_NV_BUFFER_MAX, TpmResponseError } from './tpm-commands.ts';
import { openTpmTransport, type TpmTransport } from './tpm-transport.ts';

export const HCL_REPORT_INDEX = 0x01400001;
export const USER_DATA_INDEX = 0x01400002;
export const DEFAULT_TPM_DEVICE = '/dev/tpmrm0';
const THIM_URL = 'http://169.254.169.254/metadata/THIM/amd/certification';
const HCL_MIN = 0x4d4;
/** Azure's HCL report index holds ~2.6 KB; anything far larger is not one. */
const HCL_MAX = 16 * 1024;
/** A THIM answer is a few KB of PEM. */
const MAX_IMDS_BYTES = 64 * 1024;
/** TPM NV buffers are 512-2048 bytes; a TPM claiming less (or more) is not trusted to talk in chunks. */
const NV_BUFFER_MIN = 64;
const NV_BUFFER_MAX = 4096;
/** One collection, all TPM commands and waits included (each command also has its own deadline). */
const DEFAULT_COLLECT_TIMEOUT_MS = 60_000;

export interface AzureVtpmOptions {
  /** `/dev/tpmrm0` (default) or `tcp:HOST:PORT` for a TPM simulator. */
  readonly device?: string;
  /** VCEK (DER) to put in the package; default: fetched from Azure IMDS (THIM). */
  readonly vcek?: Uint8Array | (() => Promise<Uint8Array>);
  /** Define 0x01400002 when absent (a bare TPM simulator has no Azure indexes). Off on real VMs. */
  readonly defineUserDataIndex?: boolean;
  /** Reads of the HCL report while waiting for it to reflect our user data (default 5). */
  readonly refreshAttempts?: number;
  readonly refreshDelayMs?: number;
  /** Deadline of each TPM command. */
  readonly timeoutMs?: number;
  /** Deadline of one whole collection (default 60 s). */
  readonly collectTimeoutMs?: number;
}

/** The claims' user-data of an HCL report (uppercase hex upstream), or null if unreadable. */
export function hclUserData(blob: Uint8Array): string | null {
  if (blob.length < HCL_MIN || new TextDecoder().decode(blob.subarray(0, 4)) !== 'HCLA') return null;
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const claimsSize = view.getUint32(0x4d0, true);
  if (claimsSize > blob.length - HCL_MIN) return null;
  try {
    const claims = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(blob.subarray(HCL_MIN, HCL_MIN + claimsSize))) as unknown;
    const ud = (claims as Record<string, unknown> | null)?.['user-data'];
    return typeof ud === 'string' ? ud.toLowerCase() : null;
  } catch {
    return null;
  }
}

/** Fetch the VCEK from Azure's instance metadata service (THIM), DER. */
export async function fetchAzureVcek(timeoutMs = 10_000, url = THIM_URL): Promise<Uint8Array> {
  // The metadata service is the host's: its answer is bounded, never followed elsewhere, and
  // never quoted back.
  let body: { vcekCert?: unknown };
  const unavailable = (why: string, cause?: unknown) => new AttexError('provider.vcek-unavailable', `cannot fetch the VCEK from Azure IMDS (${url}): ${why}`, cause === undefined ? {} : { cause });
  let text: string;
  try {
    const res = await fetch(url, { headers: { Metadata: 'true' }, redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) throw unavailable(`HTTP ${res.status}`);
    if (Number(res.headers.get('content-length') ?? 0) > MAX_IMDS_BYTES) throw unavailable(`the answer is larger than ${MAX_IMDS_BYTES} bytes`);
    const body = res.body;
    const bytes = body === null ? Buffer.alloc(0) : await readCapped(body, MAX_IMDS_BYTES, () => void body.cancel().catch(() => undefined));
    if (bytes === undefined) throw unavailable(`the answer is larger than ${MAX_IMDS_BYTES} bytes`);
    text = bytes.toString('utf8');
  } catch (err) {
    if (err instanceof AttexError) throw err;
    throw unavailable(err instanceof Error ? err.name : 'request failed', err);
  }
  try {
    body = JSON.parse(text) as { vcekCert?: unknown };
  } catch {
    throw unavailable('the answer is not JSON');
  }
  if (typeof body !== 'object' || body === null) throw unavailable('the answer is not a JSON object');
  const pem = typeof body.vcekCert === 'string' ? /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(body.vcekCert) : null;
  if (!pem) throw new AttexError('provider.vcek-unavailable', 'Azure IMDS answered without a VCEK certificate');
  return new Uint8Array(Buffer.from(pem[1]!.replace(/\s+/g, ''), 'base64'));
}

async function ensureUserDataIndex(t: TpmTransport, define: boolean): Promise<void> {
  try {
    const pub = await nvReadPublic(t, USER_DATA_INDEX);
    if (pub.dataSize < 64) throw new AttexError('provider.unsupported', `NV index 0x01400002 holds ${pub.dataSize} bytes, need 64`);
  } catch (err) {
    if (!(err instanceof TpmResponseError && err.isHandleError)) throw err;
    if (!define) {
      throw new AttexError('provider.unavailable', 'NV index 0x01400002 (Azure HCL user data) does not exist: this TPM is not an Azure confidential VM vTPM');
    }
    await nvDefineSpace(t, USER_DATA_INDEX, 64);
  }
}

async function readHclReport(t: TpmTransport, maxChunk: number): Promise<Uint8Array> {
  let size: number;
  try {
    size = (await nvReadPublic(t, HCL_REPORT_INDEX)).dataSize;
  } catch (err) {
    if (err instanceof TpmResponseError && err.isHandleError) {
      throw new AttexError('provider.unavailable', 'NV index 0x01400001 (Azure HCL report) does not exist: this TPM is not an Azure confidential VM vTPM', { cause: err });
    }
    throw err;
  }
  if (size < HCL_MIN || size > HCL_MAX) throw new AttexError('provider.malformed', `NV index 0x01400001 holds ${size} bytes, not the size of an HCL report`);
  const blob = await nvRead(t, HCL_REPORT_INDEX, size, maxChunk);
  const reportSize = new DataView(blob.buffer).getUint32(8, true);
  if (new TextDecoder().decode(blob.subarray(0, 4)) !== 'HCLA' || reportSize < HCL_MIN || reportSize > size) {
    throw new AttexError('provider.malformed', 'NV index 0x01400001 does not hold an HCL report');
  }
  return blob;
}

export function azureVtpmProvider(opts: AzureVtpmOptions = {}): EvidenceProvider {
  const device = opts.device ?? DEFAULT_TPM_DEVICE;
  const attempts = Math.max(1, opts.refreshAttempts ?? 5);
  const delayMs = opts.refreshDelayMs ?? 500;
  return {
    name: 'azure-vtpm',
    async collect(reportData: Uint8Array): Promise<EvidencePackage> {
      checkReportData(reportData);
      const t = await openTpmTransport(device, opts.timeoutMs);
      const collectTimeoutMs = opts.collectTimeoutMs ?? DEFAULT_COLLECT_TIMEOUT_MS;
      const overdue = new AttexError('provider.tpm-timeout', `collecting the HCL report took longer than ${collectTimeoutMs} ms`);
      let expired = false;
      let timer: NodeJS.Timeout | undefined;
      // Checked between commands: a TPM that answers each one just in time cannot stretch a
      // collection without bound.
      const inTime = () => {
        if (expired) throw overdue;
      };
      const work = (async (): Promise<Uint8Array | null> => {
        const maxChunk = await getTpmProperty(t, PT_NV_BUFFER_MAX);
        if (maxChunk < NV_BUFFER_MIN || maxChunk > NV_BUFFER_MAX) throw new AttexError('provider.tpm', `the TPM reports an NV buffer of ${maxChunk} bytes (expected ${NV_BUFFER_MIN}-${NV_BUFFER_MAX})`);
        inTime();
        await ensureUserDataIndex(t, opts.defineUserDataIndex ?? false);
        inTime();
        await nvWrite(t, USER_DATA_INDEX, reportData, maxChunk);
        const wanted = toHex(reportData);
        for (let i = 0; i < attempts; i++) {
          inTime();
          if (i > 0) await new Promise((r) => setTimeout(r, delayMs));
          const candidate = await readHclReport(t, maxChunk);
          if (hclUserData(candidate) === wanted) return candidate;
        }
        return null;
      })();
      work.catch(() => undefined);
      let blob: Uint8Array | null;
      try {
        blob = await Promise.race([
          work,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => {
              expired = true;
              reject(overdue);
            }, collectTimeoutMs);
          }),
        ]);
      } finally {
        clearTimeout(timer);
        await t.close();
      }
      if (blob === null) throw new AttexError('provider.stale-report', `the HCL report did not reflect the requested user data after ${attempts} reads`);
      const vcek = typeof opts.vcek === 'function' ? await opts.vcek() : opts.vcek ?? (await fetchAzureVcek());
      return makeEvidencePackage({ kind: 'azure-hcl-snp', evidence: blob, certs: [vcek] });
    },
  };
}
