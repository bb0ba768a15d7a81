/**
 * `attex evidence appraise <file> --policy FILE`: verify evidence offline, then appraise the
 * result against a reference-value policy and print an EAR-style verdict.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { AttexError } from '../../../errors/index.ts';
import {
  detectEvidenceKind, type EvidencePackage, loadCollateralDir, loadTrustStore, makeEvidencePackage, packageCollateral, parseEvidencePackage, verifyEvidence,
} from '../../../attestation/evidence/index.ts';
import { appraise, loadPolicyFile } from '../../../attestation/appraisal/index.ts';
import { type Command, EXIT_NEGATIVE, EXIT_OK, UsageError, parseCommandArgs, writeJson, writeLine } from '../../command.ts';
import { DEFAULT_SIM_STATE, parseReportData } from './simulate.ts';

const MAX_INPUT_BYTES = 2 * 1024 * 1024;

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
  --sim-state DIR       simulated TEE state directory (default ${DEFAULT_SIM_STATE})
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

async function readBounded(file: string, what: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new AttexError('cli.io', `cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  if (bytes.length > MAX_INPUT_BYTES) throw new AttexError('cli.io', `${what} ${file} is larger than ${MAX_INPUT_BYTES} bytes`);
  return bytes;
}

function certsFrom(bytes: Buffer): Uint8Array[] {
  const text = bytes.toString('latin1');
  if (!text.includes('-----BEGIN')) return [new Uint8Array(bytes)];
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/g)].map((m) => new Uint8Array(Buffer.from(m[1]!.replace(/\s/g, ''), 'base64')));
}

async function loadPackage(file: string, certFiles: string[], collateralDir: string | undefined): Promise<EvidencePackage> {
  const input = await readBounded(file, 'evidence file');
  const certs: Uint8Array[] = [];
  for (const f of certFiles) certs.push(...certsFrom(await readBounded(f, 'certificate')));
  const collateral = collateralDir === undefined ? undefined : await loadCollateralDir(collateralDir);
  const first = input.find((b) => b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d);
  if (first === 0x7b) {
    const pkg = parseEvidencePackage(input);
    if (certs.length === 0 && collateral === undefined) return pkg;
    const existing = (pkg.certs ?? []).map((c) => new Uint8Array(Buffer.from(c, 'base64')));
    const merged = collateral ?? packageCollateral(pkg);
    return makeEvidencePackage({ kind: pkg.kind, evidence: new Uint8Array(Buffer.from(pkg.evidence, 'base64')), certs: certs.length > 0 ? certs : existing, ...(merged && { collateral: merged }) });
  }
  const evidence = new Uint8Array(input);
  const kind = detectEvidenceKind(evidence);
  if (kind === null) throw new AttexError('evidence.unrecognised', `${file} is neither an evidence package nor SEV-SNP, Azure HCL or TDX evidence`);
  return makeEvidencePackage({ kind, evidence, certs: kind === 'tdx' ? [] : certs, ...(kind === 'tdx' && collateral && { collateral }) });
}

function parseNow(value: string | undefined): Date {
  if (value === undefined) return new Date();
  const date = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value) || Number.isNaN(date.getTime())) throw new UsageError(`--now: not an ISO 8601 instant: ${value}`);
  return date;
}

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
    const pkg = await loadPackage(resolve(positionals[0]!), (values.cert ?? []).map(resolve), values.collateral === undefined ? undefined : resolve(values.collateral));
    let extra = {};
    if (allowSimulated) {
      const { openSimulatedTee } = await import('../../../attestation/sim/index.ts');
      const sim = await openSimulatedTee(resolve(values['sim-state'] ?? DEFAULT_SIM_STATE));
      extra = { extraAmd: sim.amdRoots, extraIntel: sim.intelRoots };
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
