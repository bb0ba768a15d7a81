/**
 * `attex evidence appraise <file> --policy FILE`: verify evidence offline, then appraise the
 * result against a reference-value policy and print an EAR-style verdict.
 */
import path from 'node:path';
import { loadTrustStore, verifyEvidence } from '../../../attestation/evidence/index.ts';
import { appraise, loadPolicyFile } from '../../../attestation/appraisal/index.ts';
import { type Command, EXIT_NEGATIVE, EXIT_OK, UsageError, parseCommandArgs, writeJson, writeLine } from '../../command.ts';
import { buildPackage, parseNow, simulatedRoots } from './input.ts';
import { DEFAULT_SIM_STATE, parseReportData } from './simulate.ts';

const HELP = `usage: attex evidence appraise <file> --policy FILE [options]

Verify evidence (raw SEV-SNP report, Azure HCL report, TDX quote, or an evidence package JSON)
and appraise it against an appraisal policy (attestation/policies/*.json). Prints the status
(affirming, warning, contraindicated), the AR4SI trustworthiness vector and every reason.

options:
  --policy FILE         appraisal policy (e.g. attestation/policies/default.json)
  --cert FILE           VCEK/VLEK certificate (DER or PEM) for raw SNP evidence
  --collateral DIR      Intel PCS collateral directory for TDX
  --roots DIR           trust roots directory (default: the bundled attestation/roots)
  --now ISO-8601        verify at this instant instead of the current time
  --allow-simulated     trust the simulated TEE's roots too (the policy must also allow them)
  --sim-state DIR       existing simulated TEE state directory (default ${DEFAULT_SIM_STATE})
  --report-data HEX     expected report data binding (up to 64 bytes, zero-padded)
  --require-affirming   exit 1 on warning as well as on contraindicated
  --json                print the appraisal as JSON

exit codes: 0 affirming or warning; 1 contraindicated (or warning with --require-affirming);
2 usage or I/O error.`;

const OPTIONS = {
  policy: { type: 'string' },
  cert: { type: 'string', multiple: true },
  collateral: { type: 'string' },
  roots: { type: 'string' },
  now: { type: 'string' },
  'allow-simulated': { type: 'boolean' },
  'sim-state': { type: 'string' },
  'report-data': { type: 'string' },
  'require-affirming': { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

export const subcommand: Command = {
  name: 'appraise',
  summary: 'verify evidence and appraise it against a reference-value policy',
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, OPTIONS);
    if (positionals.length !== 1) throw new UsageError('expected exactly one evidence file');
    if (values.policy === undefined) throw new UsageError('--policy FILE is required');
    const resolve = (p: string) => path.resolve(io.cwd, p);
    const now = parseNow(values.now);
    const allowSimulated = values['allow-simulated'] === true;
    if (values['sim-state'] !== undefined && !allowSimulated) throw new UsageError('--sim-state needs --allow-simulated');
    const reportData = values['report-data'] === undefined ? undefined : parseReportData(values['report-data']);
    const policy = await loadPolicyFile(resolve(values.policy));
    const pkg = await buildPackage(resolve(positionals[0]!), (values.cert ?? []).map(resolve), values.collateral === undefined ? undefined : resolve(values.collateral));
    let extra = {};
    if (allowSimulated) {
      const sim = await simulatedRoots(resolve(values['sim-state'] ?? DEFAULT_SIM_STATE));
      extra = { extraAmd: [...sim.amd], extraIntel: [...sim.intel] };
    }
    const trust = await loadTrustStore({ ...(values.roots !== undefined && { rootsDir: resolve(values.roots) }), ...extra, allowSimulated });
    const result = await verifyEvidence(pkg, { trust, now });
    const appraisal = appraise(result, policy, reportData ? { reportData } : {});
    if (values.json === true) writeJson(io.stdout, { ...appraisal, outcome: result.outcome, simulated: result.simulated });
    else {
      writeLine(io.stdout, `status        ${appraisal.status}${result.simulated ? ' (SIMULATED TEE)' : ''}`);
      writeLine(io.stdout, `tee           ${appraisal.tee}`);
      writeLine(io.stdout, `policy        ${appraisal.policyId} (sha256 ${appraisal.policyDigest})`);
      writeLine(io.stdout, `verification  ${result.outcome}${result.tcb_status ? ` (TCB ${result.tcb_status})` : ''}`);
      writeLine(io.stdout, 'trustworthiness vector:');
      for (const [claim, value] of Object.entries(appraisal.trustworthinessVector)) writeLine(io.stdout, `  ${claim.padEnd(18)}${value}`);
      if (appraisal.reasons.length > 0) {
        writeLine(io.stdout, 'reasons:');
        for (const r of appraisal.reasons) writeLine(io.stdout, `  - ${r.code}: ${r.message}`);
      }
    }
    if (appraisal.status === 'contraindicated') return EXIT_NEGATIVE;
    if (appraisal.status === 'warning' && values['require-affirming'] === true) return EXIT_NEGATIVE;
    return EXIT_OK;
  },
};
