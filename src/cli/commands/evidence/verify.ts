/**
 * `attex evidence verify <file>`: offline verification of SEV-SNP, Azure HCL or TDX evidence
 * against the vendor roots. The file is either raw evidence (report.bin, hcl-report.bin,
 * quote.bin) or an evidence package (JSON). Nothing is fetched: certificates and collateral
 * come from the file and the flags.
 */
import path from 'node:path';
import { loadTrustStore, verifyEvidence } from '../../../attestation/evidence/index.ts';
import type { VerificationResult } from '../../../attestation/types.ts';
import { buildPackage, parseNow, simulatedRoots } from './input.ts';
import { type Command, type CommandIO, EXIT_NEGATIVE, EXIT_OK, UsageError, parseCommandArgs, writeJson, writeLine } from '../../command.ts';

const HELP = `usage: attex evidence verify <file> [options]

Verify TEE evidence offline. <file> is raw evidence (a 1184-byte SEV-SNP report, an Azure HCL
report, or a TDX quote; the kind is detected) or an evidence package (JSON).

options:
  --cert FILE           VCEK/VLEK certificate (DER or PEM) for SNP evidence; repeatable, first
                        is the signing certificate. Replaces the package's certs.
  --collateral DIR      Intel PCS collateral directory for TDX (tcb-info.json, qe-identity.json,
                        *-issuer-chain.pem, pck-crl.der, root-ca-crl.der). Replaces the
                        package's collateral.
  --roots DIR           trust roots directory (default: the bundled attestation/roots)
  --now ISO-8601        verify at this instant instead of the current time
  --allow-simulated     also trust the software-emulated TEE's roots (flagged "simulated")
  --sim-state DIR       existing simulated TEE state directory (default .attex/sim)
  --require-collateral  treat TDX evidence verified without collateral (chain-only) as rejected
  --json                print one JSON object: kind, tee, simulated, outcome, tcb_status,
                        advisory_ids, reasons, fields

exit codes: 0 accept or accept-tcb-not-uptodate (and chain-only, with a warning, unless
--require-collateral); 1 reject; 2 usage or I/O error.`;

const OPTIONS = {
  cert: { type: 'string', multiple: true },
  collateral: { type: 'string' },
  roots: { type: 'string' },
  now: { type: 'string' },
  'allow-simulated': { type: 'boolean' },
  'sim-state': { type: 'string' },
  'require-collateral': { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

const SUMMARY_FIELDS = [
  'version', 'signing_key', 'vmpl', 'debug_allowed', 'debug', 'policy', 'reported_tcb', 'fmspc', 'tee_tcb_svn', 'pce_svn',
  'measurement', 'mr_td', 'rtmr0', 'rtmr1', 'rtmr2', 'rtmr3', 'report_data', 'user_data', 'chip_id',
] as const;

function formatValue(value: unknown): string {
  if (value !== null && typeof value === 'object') {
    const tcb = value as Record<string, unknown>;
    if ('raw_u64' in tcb) {
      return ['fmc', 'bl', 'tee', 'snp', 'ucode'].filter((k) => tcb[k] !== undefined).map((k) => `${k}=${String(tcb[k])}`).join(' ');
    }
    return JSON.stringify(value);
  }
  return String(value);
}

function printHuman(io: CommandIO, result: VerificationResult): void {
  const line = (label: string, value: string) => writeLine(io.stdout, `${label.padEnd(14)}${value}`);
  line('kind', result.kind + (result.simulated ? ' (SIMULATED: not genuine hardware)' : ''));
  line('tee', result.tee);
  line('outcome', result.outcome);
  line('tcb status', result.tcb_status ?? '-');
  if (result.advisory_ids.length > 0) line('advisories', result.advisory_ids.join(', '));
  for (const name of SUMMARY_FIELDS) {
    if (result.fields[name] !== undefined) line(name, formatValue(result.fields[name]));
  }
  if (result.reasons.length > 0) {
    writeLine(io.stdout, 'reasons:');
    for (const r of result.reasons) writeLine(io.stdout, `  - ${r.code}: ${r.message}`);
  }
}

function jsonSafe(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)));
}

export const subcommand: Command = {
  name: 'verify',
  summary: 'verify SEV-SNP, Azure HCL or TDX evidence offline against vendor roots',
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, OPTIONS);
    if (positionals.length !== 1) throw new UsageError('expected exactly one evidence file');
    const resolve = (p: string) => path.resolve(io.cwd, p);
    const now = parseNow(values.now);
    const allowSimulated = values['allow-simulated'] === true;
    if (values['sim-state'] !== undefined && !allowSimulated) throw new UsageError('--sim-state needs --allow-simulated');

    const pkg = await buildPackage(resolve(positionals[0]!), (values.cert ?? []).map(resolve), values.collateral === undefined ? undefined : resolve(values.collateral));
    const sim = allowSimulated ? await simulatedRoots(resolve(values['sim-state'] ?? '.attex/sim')) : undefined;
    const trust = await loadTrustStore({
      ...(values.roots !== undefined && { rootsDir: resolve(values.roots) }),
      ...(sim !== undefined && { extraAmd: sim.amd, extraIntel: sim.intel }),
      allowSimulated,
    });
    const result = await verifyEvidence(pkg, { trust, now });

    if (values.json === true) {
      writeJson(io.stdout, jsonSafe({
        kind: result.kind,
        tee: result.tee,
        simulated: result.simulated,
        outcome: result.outcome,
        tcb_status: result.tcb_status,
        advisory_ids: result.advisory_ids,
        reasons: result.reasons.map((r) => ({ code: r.code, message: r.message })),
        fields: result.fields,
      }));
    } else {
      printHuman(io, result);
    }
    if (result.outcome === 'chain-only') {
      const requireCollateral = values['require-collateral'] === true;
      writeLine(
        io.stderr,
        requireCollateral
          ? 'attex evidence verify: rejected: no TDX collateral, so the TCB status is unknown (--require-collateral)'
          : 'attex evidence verify: warning: no TDX collateral: only signatures and the PCK chain were checked; the TCB status is unknown (pass --collateral DIR, or --require-collateral to fail)',
      );
      return requireCollateral ? EXIT_NEGATIVE : EXIT_OK;
    }
    return result.outcome === 'reject' ? EXIT_NEGATIVE : EXIT_OK;
  },
};
