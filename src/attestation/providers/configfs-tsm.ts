/**
 * Evidence from the Linux configfs-tsm report interface (kernel 6.7+): create a report entry,
 * write 64 bytes of report data to `inblob`, read `outblob` (the SNP report or TDX quote) and
 * `auxblob` (SNP: the host's certificate table), and use `generation` to detect another writer
 * racing on the same entry. Plain file I/O; no ioctls.
 * https://docs.kernel.org/ (ABI: /sys/kernel/config/tsm/report)
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { AttexError } from '../../errors/index.ts';
import { bytesEqual, readBoundedFile } from '../../util/index.ts';
import { detectEvidenceKind } from '../evidence/detect.ts';
import { type EvidencePackage, makeEvidencePackage } from '../evidence/package.ts';
import { checkReportData, errnoOf, providerIoError } from './errors.ts';
import type { EvidenceProvider } from './provider.ts';
import { parseCertTable } from './snp-cert-table.ts';

export const DEFAULT_CONFIGFS_ROOT = '/sys/kernel/config';
/** Twice the kernel's own cap on a report attribute. */
const MAX_ATTRIBUTE_BYTES = 64 * 1024;

/** The file operations the provider needs; node:fs by default. Tests supply an emulated kernel. */
export interface TsmFileSystem {
  mkdir(dir: string): Promise<void>;
  rmdir(dir: string): Promise<void>;
  readFile(file: string): Promise<Uint8Array>;
  /** One write(2) of the whole buffer to an existing attribute file. */
  writeFile(file: string, data: Uint8Array): Promise<void>;
}

export const nodeTsmFileSystem: TsmFileSystem = {
  async mkdir(dir) {
    await mkdir(dir, { mode: 0o700 });
  },
  async rmdir(dir) {
    await rmdir(dir);
  },
  async readFile(file) {
    // The host fills outblob and auxblob: a regular file only (a FIFO would block for good), and
    // no more than the kernel itself produces (TSM_OUTBLOB_MAX is 32 KiB).
    return new Uint8Array(await readBoundedFile(file, MAX_ATTRIBUTE_BYTES));
  },
  async writeFile(file, data) {
    const handle = await open(file, constants.O_WRONLY);
    try {
      const { bytesWritten } = await handle.write(data, 0, data.length, null);
      if (bytesWritten !== data.length) throw new AttexError('provider.io', `short write to ${file}`);
    } finally {
      await handle.close();
    }
  },
};

export interface ConfigfsTsmOptions {
  /** configfs mount point (default /sys/kernel/config). */
  readonly root?: string;
  readonly fs?: TsmFileSystem;
  /** Attempts when `generation` shows a concurrent writer (default 3). */
  readonly maxAttempts?: number;
  /** SNP VMPL to request (writes `privlevel`); omitted = the kernel's default. */
  readonly privlevel?: number;
  /** Deadline of one whole collection (default 60 s). */
  readonly collectTimeoutMs?: number;
}

const DEFAULT_COLLECT_TIMEOUT_MS = 60_000;

const TEXT = new TextDecoder();

function reportDataOffset(kind: 'snp' | 'tdx', blob: Uint8Array): number {
  if (kind === 'snp') return 0x50;
  const version = blob[0]! | (blob[1]! << 8);
  return version === 4 ? 48 + 520 : 54 + 520;
}

export function configfsTsmProvider(opts: ConfigfsTsmOptions = {}): EvidenceProvider {
  const fs = opts.fs ?? nodeTsmFileSystem;
  const reportDir = path.join(opts.root ?? DEFAULT_CONFIGFS_ROOT, 'tsm', 'report');
  const maxAttempts = Math.max(1, opts.maxAttempts ?? 3);
  const collectTimeoutMs = opts.collectTimeoutMs ?? DEFAULT_COLLECT_TIMEOUT_MS;

  async function readText(file: string): Promise<string> {
    try {
      return TEXT.decode(await fs.readFile(file)).trim();
    } catch (err) {
      throw providerIoError(err, 'read', file);
    }
  }

  async function readGeneration(entry: string): Promise<number> {
    const text = await readText(path.join(entry, 'generation'));
    if (!/^\d{1,15}$/.test(text)) throw new AttexError('provider.malformed', `configfs-tsm generation is not a number: ${JSON.stringify(text.slice(0, 32))}`);
    return Number(text);
  }

  async function attempt(entry: string, reportData: Uint8Array): Promise<{ blob: Uint8Array; aux: Uint8Array | null; provider: string } | null> {
    if (opts.privlevel !== undefined) {
      await fs.writeFile(path.join(entry, 'privlevel'), new TextEncoder().encode(`${opts.privlevel}\n`)).catch((err) => {
        throw providerIoError(err, 'write', path.join(entry, 'privlevel'));
      });
    }
    const before = await readGeneration(entry);
    await fs.writeFile(path.join(entry, 'inblob'), reportData).catch((err) => {
      throw providerIoError(err, 'write', path.join(entry, 'inblob'));
    });
    const provider = await readText(path.join(entry, 'provider'));
    let blob: Uint8Array;
    try {
      blob = await fs.readFile(path.join(entry, 'outblob'));
    } catch (err) {
      throw providerIoError(err, 'read', path.join(entry, 'outblob'));
    }
    let aux: Uint8Array | null = null;
    try {
      aux = await fs.readFile(path.join(entry, 'auxblob'));
    } catch (err) {
      // auxblob exists only where the TSM provider supports it; absence is not an error.
      if (errnoOf(err) !== 'ENOENT' && errnoOf(err) !== 'ENXIO') throw providerIoError(err, 'read', path.join(entry, 'auxblob'));
    }
    const after = await readGeneration(entry);
    // Our inblob write bumps generation by exactly one; anything else means another writer.
    return after === before + 1 ? { blob, aux, provider } : null;
  }

  return {
    name: 'configfs-tsm',
    /**
     * A read of `outblob` waits on the kernel and the firmware, and one that never returns cannot
     * be cancelled from user space: past the deadline the caller gets provider.timeout, and the
     * entry is removed whenever the stuck read returns.
     */
    async collect(reportData: Uint8Array): Promise<EvidencePackage> {
      checkReportData(reportData);
      const overdue = new AbortController();
      const work = collectOnce(reportData, overdue.signal);
      work.catch(() => undefined);
      let timer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([
          work,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => {
              overdue.abort();
              reject(new AttexError('provider.timeout', `configfs-tsm did not produce a report within ${collectTimeoutMs} ms; the kernel or the TEE firmware is not answering`));
            }, collectTimeoutMs);
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
  };

  async function collectOnce(reportData: Uint8Array, overdue: AbortSignal): Promise<EvidencePackage> {
    const entry = path.join(reportDir, `attex-${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      await fs.mkdir(entry);
    } catch (err) {
      const mapped = providerIoError(err, 'create a report entry in', reportDir);
      if (mapped.code === 'provider.unavailable') {
        throw new AttexError(
          'provider.unavailable',
          `${reportDir} does not exist: configfs-tsm needs Linux 6.7+ with CONFIG_TSM_REPORTS inside an SEV-SNP or TDX guest, ` +
            'and configfs mounted (mount -t configfs none /sys/kernel/config)',
          { cause: err },
        );
      }
      throw mapped;
    }
    try {
      let got: Awaited<ReturnType<typeof attempt>> = null;
      // No new attempt once the caller has given up (a stuck read returned late).
      for (let i = 0; i < maxAttempts && got === null && !overdue.aborted; i++) got = await attempt(entry, reportData);
      if (overdue.aborted) throw new AttexError('provider.timeout', 'configfs-tsm collection abandoned after its deadline');
      if (got === null) {
        throw new AttexError('provider.race', `configfs-tsm generation changed during ${maxAttempts} attempts: another process is writing to the same report entry`);
      }
      const kind = got.provider === 'sev_guest' ? 'snp' : got.provider === 'tdx_guest' ? 'tdx' : null;
      if (kind === null) throw new AttexError('provider.unsupported', `configfs-tsm provider ${JSON.stringify(got.provider.slice(0, 32))} is not supported (expected sev_guest or tdx_guest)`);
      if (detectEvidenceKind(got.blob) !== kind) throw new AttexError('provider.malformed', `outblob from ${got.provider} is not a well-formed ${kind} evidence blob`);
      const offset = reportDataOffset(kind, got.blob);
      if (!bytesEqual(got.blob.subarray(offset, offset + 64), reportData)) {
        throw new AttexError('provider.stale-report', 'outblob does not carry the requested report data');
      }
      if (kind === 'tdx') return makeEvidencePackage({ kind, evidence: got.blob });
      const certs = got.aux && got.aux.length > 0 ? parseCertTable(got.aux) : [];
      const vek = certs.find((c) => c.role === 'vcek') ?? certs.find((c) => c.role === 'vlek');
      return makeEvidencePackage({ kind, evidence: got.blob, ...(vek && { certs: [vek.cert] }) });
    } finally {
      await fs.rmdir(entry).catch(() => undefined);
    }
  }
}
