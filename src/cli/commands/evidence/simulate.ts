/**
 * `attex evidence simulate`: evidence from the software-emulated TEE, written as an evidence
 * package (JSON). The simulated roots live in the state directory; verifiers accept the
 * evidence only with --allow-simulated and the same --sim-state.
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic as writeFileAtomicShared } from '../../../util/files.ts';
import path from 'node:path';
import { AttexError } from '../../../errors/index.ts';
import { encodeEvidencePackage } from '../../../attestation/evidence/package.ts';
import type { EvidencePackage } from '../../../attestation/evidence/package.ts';
import type { AmdProduct } from '../../../attestation/types.ts';
import { type Command, EXIT_OK, UsageError, parseCommandArgs, writeJson, writeLine } from '../../command.ts';

export const DEFAULT_SIM_STATE = '.attex/sim';

const HELP = `usage: attex evidence simulate --report-data HEX --out FILE [options]

Produce evidence from the software-emulated TEE (development and CI; it proves nothing about
hardware). The output is an evidence package (JSON) that \`attex evidence verify\` and
\`attex evidence appraise\` accept with --allow-simulated --sim-state DIR.

options:
  --kind snp|tdx|azure-hcl  evidence kind (default snp)
  --report-data HEX     up to 64 bytes bound into the evidence (zero-padded to 64)
  --version 3|5         SEV-SNP report version (default 3)
  --product NAME        Milan, Genoa or Turin (default Milan)
  --state DIR           simulated TEE state directory (default ${DEFAULT_SIM_STATE}); created on first use
  --measurement-input FILE  bytes folded into the simulated measurement (e.g. the executor config)
  --out FILE            where to write the evidence package
  --json                print a JSON summary (kind, out, rootsDir, measurement, reportData)

exit codes: 0 written; 2 usage or I/O error.`;

const OPTIONS = {
  kind: { type: 'string' },
  'report-data': { type: 'string' },
  version: { type: 'string' },
  product: { type: 'string' },
  state: { type: 'string' },
  'measurement-input': { type: 'string' },
  out: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** Parse --report-data: 1..64 bytes of hex, zero-padded to 64 (Trustee pads short data the same way). */
export function parseReportData(hex: string | undefined): Uint8Array {
  if (hex === undefined) throw new UsageError('--report-data HEX is required');
  const clean = hex.startsWith('0x') ? hex.slice(2) : hex;
  if (clean.length === 0 || clean.length > 128 || clean.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(clean)) {
    throw new UsageError('--report-data must be 1 to 64 bytes of hex');
  }
  const out = new Uint8Array(64);
  out.set(Buffer.from(clean, 'hex'));
  return out;
}

/** Write a file so that readers see the old content or the complete new one, never a part. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  try {
    await writeFileAtomicShared(file, data);
  } catch (err) {
    throw new AttexError('cli.io', `cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}

export async function writePackage(file: string, pkg: EvidencePackage): Promise<void> {
  await writeFileAtomic(file, `${encodeEvidencePackage(pkg)}\n`);
}

export const subcommand: Command = {
  name: 'simulate',
  summary: 'produce evidence from the software-emulated TEE',
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, OPTIONS, false);
    if (positionals.length > 0) throw new UsageError('unexpected arguments');
    const kind = values.kind ?? 'snp';
    if (kind !== 'snp' && kind !== 'tdx' && kind !== 'azure-hcl') throw new UsageError('--kind must be snp, tdx or azure-hcl');
    const version = values.version === undefined ? 3 : Number(values.version);
    if (version !== 3 && version !== 5) throw new UsageError('--version must be 3 or 5');
    const product = (values.product ?? 'Milan') as AmdProduct;
    if (!['Milan', 'Genoa', 'Turin'].includes(product)) throw new UsageError('--product must be Milan, Genoa or Turin');
    if (values.out === undefined) throw new UsageError('--out FILE is required');
    const reportData = parseReportData(values['report-data']);
    const resolve = (p: string) => path.resolve(io.cwd, p);
    let measurementInput: Uint8Array | undefined;
    if (values['measurement-input'] !== undefined) {
      try {
        measurementInput = new Uint8Array(await readFile(resolve(values['measurement-input'])));
      } catch (err) {
        throw new AttexError('cli.io', `cannot read ${values['measurement-input']}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
      }
    }
    const { openSimulatedTee } = await import('../../../attestation/sim/index.ts');
    const stateDir = resolve(values.state ?? DEFAULT_SIM_STATE);
    const sim = await openSimulatedTee(stateDir, measurementInput ? { measurementInput } : {});
    const pkg =
      kind === 'tdx' ? await sim.tdxEvidence(reportData)
      : kind === 'azure-hcl' ? await sim.azureHclEvidence(reportData, { product })
      : await sim.snpEvidence(reportData, { version, product });
    const out = resolve(values.out);
    await writePackage(out, pkg);
    const summary = { kind: pkg.kind, out, stateDir, rootsDir: sim.rootsDir, measurement: Buffer.from(sim.measurement).toString('hex'), reportData: Buffer.from(reportData).toString('hex') };
    if (values.json === true) writeJson(io.stdout, summary);
    else {
      writeLine(io.stdout, `wrote simulated ${pkg.kind} evidence to ${out}`);
      writeLine(io.stdout, `simulated roots (NOT vendor roots): ${sim.rootsDir}`);
      writeLine(io.stdout, `verify with: attex evidence verify ${values.out} --allow-simulated --sim-state ${values.state ?? DEFAULT_SIM_STATE}`);
    }
    return EXIT_OK;
  },
};
