/**
 * `attex evidence collect`: evidence from this machine's TEE (configfs-tsm, the Azure vTPM, or
 * the simulated TEE when asked for), written as an evidence package (JSON).
 */
import path from 'node:path';
import { type Command, EXIT_OK, UsageError, parseCommandArgs, writeJson, writeLine } from '../../command.ts';
import { parseReportData, writePackage } from './simulate.ts';

const HELP = `usage: attex evidence collect --report-data HEX --out FILE [options]

Collect evidence bound to --report-data from this machine's TEE and write it as an evidence
package (JSON).

options:
  --report-data HEX       up to 64 bytes (zero-padded to 64), e.g. from the key binding
  --out FILE              where to write the evidence package
  --provider NAME         auto (default), configfs-tsm, azure-vtpm or sim
                          auto tries configfs-tsm, then the Azure vTPM, then sim if --sim-state is given
  --configfs-root DIR     configfs mount point (default /sys/kernel/config)
  --tpm-device PATH       TPM device (default /dev/tpmrm0; tcp:HOST:PORT for a TPM simulator)
  --sim-state DIR         simulated TEE state directory (enables the sim provider)
  --sim-kind snp|tdx      evidence kind for the sim provider (default snp)
  --json                  print a JSON summary (provider, kind, out)

exit codes: 0 written; 2 usage, I/O or provider error (the message says what is missing).`;

const OPTIONS = {
  'report-data': { type: 'string' },
  out: { type: 'string' },
  provider: { type: 'string' },
  'configfs-root': { type: 'string' },
  'tpm-device': { type: 'string' },
  'sim-state': { type: 'string' },
  'sim-kind': { type: 'string' },
  json: { type: 'boolean' },
} as const;

export const subcommand: Command = {
  name: 'collect',
  summary: "collect evidence from this machine's TEE",
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, OPTIONS, false);
    if (positionals.length > 0) throw new UsageError('unexpected arguments');
    if (values.out === undefined) throw new UsageError('--out FILE is required');
    const reportData = parseReportData(values['report-data']);
    const prefer = values.provider ?? 'auto';
    if (!['auto', 'configfs-tsm', 'azure-vtpm', 'sim'].includes(prefer)) throw new UsageError('--provider must be auto, configfs-tsm, azure-vtpm or sim');
    const simKind = values['sim-kind'] ?? 'snp';
    if (simKind !== 'snp' && simKind !== 'tdx') throw new UsageError('--sim-kind must be snp or tdx');
    const resolve = (p: string) => path.resolve(io.cwd, p);
    const { detectProvider } = await import('../../../attestation/providers/index.ts');
    const provider = await detectProvider({
      prefer: prefer as 'auto',
      ...(values['configfs-root'] !== undefined && { configfsRoot: resolve(values['configfs-root']) }),
      ...(values['tpm-device'] !== undefined && { tpmDevice: values['tpm-device'].startsWith('tcp:') ? values['tpm-device'] : resolve(values['tpm-device']) }),
      ...(values['sim-state'] !== undefined && { simStateDir: resolve(values['sim-state']) }),
      simKind,
    });
    const pkg = await provider.collect(reportData);
    const out = resolve(values.out);
    await writePackage(out, pkg);
    if (values.json === true) writeJson(io.stdout, { provider: provider.name, kind: pkg.kind, out, certs: pkg.certs?.length ?? 0 });
    else {
      writeLine(io.stdout, `wrote ${pkg.kind} evidence from ${provider.name} to ${out}`);
      if (provider.name === 'sim') writeLine(io.stdout, 'note: SIMULATED evidence: it proves nothing about hardware');
      if (pkg.kind === 'snp' && pkg.certs === undefined) writeLine(io.stderr, 'warning: the host supplied no VCEK/VLEK (auxblob empty); fetch it from AMD KDS and pass --cert to verify');
    }
    return EXIT_OK;
  },
};
