/** Errno-to-AttexError mapping shared by the providers, with advice on how to fix each case. */
import { AttexError } from '../../errors/index.ts';

export function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Turn a filesystem/device error into a provider error that says what to do about it. */
export function providerIoError(err: unknown, what: string, target: string): AttexError {
  const code = errnoOf(err);
  if (code === 'EACCES' || code === 'EPERM') {
    return new AttexError(
      'provider.permission',
      `permission denied (${code}) while trying to ${what} ${target}: run as root, or grant this user access to it ` +
        '(for configfs-tsm a udev or systemd-tmpfiles rule on the report directory; for a TPM membership of the tss group)',
      { cause: err },
    );
  }
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new AttexError('provider.unavailable', `${target} does not exist (${code}) while trying to ${what}`, { cause: err });
  }
  return new AttexError('provider.io', `cannot ${what} ${target}: ${code ?? (err instanceof Error ? err.message : String(err))}`, { cause: err });
}

export function checkReportData(reportData: Uint8Array): void {
  if (!(reportData instanceof Uint8Array) || reportData.length !== 64) {
    throw new AttexError('provider.report-data', `report data must be exactly 64 bytes, got ${reportData?.length ?? 'none'}`);
  }
}
