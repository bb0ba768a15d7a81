/**
 * Input handling shared by `attex evidence verify` and `attex evidence appraise`: reading the
 * evidence file (raw evidence or a package) with certificates and collateral from flags, the
 * --now instant, and the simulated roots (read-only: verifying never creates a simulated PKI).
 */
import { AttexError } from '../../../errors/index.ts';
import {
  type EvidencePackage,
  detectEvidenceKind,
  loadCollateralDir,
  makeEvidencePackage,
  packageCollateral,
  parseEvidencePackage,
} from '../../../attestation/evidence/index.ts';
import type { AmdRootSet, IntelRoot, TdxCollateral } from '../../../attestation/types.ts';
import { UsageError } from '../../command.ts';
import { readBoundedFile } from '../../../util/index.ts';

const MAX_INPUT_BYTES = 2 * 1024 * 1024;
const MAX_CERT_FILE_BYTES = 64 * 1024;
const ISO_8601_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/;

async function readInput(file: string, maxBytes: number, what: string): Promise<Buffer> {
  try {
    return await readBoundedFile(file, maxBytes);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EFBIG') throw new AttexError('cli.io', `${what} ${file} is larger than ${maxBytes} bytes`);
    throw new AttexError('cli.io', `cannot read ${what} ${file}: ${code === 'ENOTREG' ? 'not a regular file' : (code ?? String(err))}`, { cause: err });
  }
}

/** A certificate file as DER: one DER certificate, or every CERTIFICATE block of a PEM file. */
function certificatesFromFile(bytes: Buffer, file: string): Uint8Array[] {
  const text = bytes.toString('latin1');
  if (!text.includes('-----BEGIN')) return [new Uint8Array(bytes)];
  const blocks = [...text.matchAll(/-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/g)];
  if (blocks.length === 0) throw new AttexError('cli.io', `${file}: no PEM CERTIFICATE block`);
  return blocks.map((m) => new Uint8Array(Buffer.from(m[1]!.replace(/\s/g, ''), 'base64')));
}

export function parseNow(value: string | undefined): Date {
  if (value === undefined) return new Date();
  const m = ISO_8601_RE.exec(value);
  const date = new Date(value);
  // Date() rolls 2025-02-30 over into March; insist the calendar fields exist as written.
  const valid =
    m !== null &&
    !Number.isNaN(date.getTime()) &&
    Number(m[2]) >= 1 && Number(m[2]) <= 12 &&
    Number(m[3]) >= 1 && Number(m[3]) <= new Date(Date.UTC(Number(m[1]), Number(m[2]), 0)).getUTCDate() &&
    Number(m[4]) <= 23 && Number(m[5]) <= 59 && Number(m[6] ?? 0) <= 59;
  if (!valid) throw new UsageError(`--now: not an ISO 8601 instant: ${value}`);
  return date;
}

export async function simulatedRoots(stateDir: string): Promise<{ amd: readonly AmdRootSet[]; intel: readonly IntelRoot[] }> {
  // Loaded only with --allow-simulated: verifying real evidence never touches the simulator.
  // Read-only: verification must not create a simulated PKI as a side effect.
  const { loadSimulatedRoots } = await import('../../../attestation/sim/index.ts');
  return loadSimulatedRoots(stateDir);
}

export async function buildPackage(file: string, certFiles: readonly string[], collateralDir: string | undefined): Promise<EvidencePackage> {
  const input = await readInput(file, MAX_INPUT_BYTES, 'evidence file');
  const certs: Uint8Array[] = [];
  for (const certFile of certFiles) certs.push(...certificatesFromFile(await readInput(certFile, MAX_CERT_FILE_BYTES, 'certificate'), certFile));
  const collateral: TdxCollateral | undefined = collateralDir === undefined ? undefined : await loadCollateralDir(collateralDir);

  const firstByte = input.find((b) => b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d);
  if (firstByte === 0x7b /* '{' */) {
    const pkg = parseEvidencePackage(input);
    if (certs.length === 0 && collateral === undefined) return pkg;
    const evidence = new Uint8Array(Buffer.from(pkg.evidence, 'base64'));
    const existingCerts = (pkg.certs ?? []).map((c) => new Uint8Array(Buffer.from(c, 'base64')));
    return makeEvidencePackage({
      kind: pkg.kind,
      evidence,
      certs: certs.length > 0 ? certs : existingCerts,
      ...(collateral !== undefined ? { collateral } : pkg.collateral !== undefined && { collateral: packageCollateral(pkg)! }),
    });
  }
  const evidence = new Uint8Array(input);
  const kind = detectEvidenceKind(evidence);
  if (kind === null) {
    throw new AttexError('evidence.unrecognised', `${file} is neither an evidence package nor SEV-SNP, Azure HCL or TDX evidence`);
  }
  if (kind === 'tdx' && certs.length > 0) throw new UsageError('--cert is for SNP evidence; a TDX quote carries its PCK chain');
  if (kind !== 'tdx' && collateral !== undefined) throw new UsageError('--collateral is for TDX evidence');
  return makeEvidencePackage({ kind, evidence, certs, ...(collateral !== undefined && { collateral }) });
}
