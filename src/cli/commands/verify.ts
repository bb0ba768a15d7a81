/**
 * `attex verify <bundle> [--trust FILE] [--json] [--allow-simulated]`: verify a receipt bundle
 * offline. Exit 0 verified, 1 not verified, 2 usage or I/O error.
 */
import path from 'node:path';
import { AttexError } from '../../errors/index.ts';
import { readBoundedFile } from '../../util/index.ts';
import { type BundleVerification, MAX_BUNDLE_BYTES, loadVerifyTrust, parseTrustFile, verifyBundle } from '../../verify/index.ts';
import { type Command, type CommandIO, EXIT_NEGATIVE, EXIT_OK, UsageError, parseCommandArgs, writeJson, writeLine } from '../command.ts';

/** A trust file names keys and paths: a few KB. */
const MAX_TRUST_BYTES = 1 << 20;

const HELP = `usage: attex verify <bundle> [--trust FILE] [--json] [--allow-simulated]

Verify a receipt bundle (application/vnd.attex.bundle.v1+json) offline, in order:
  1 checkpoint          signed by the log key (and witnesses, if the trust file requires them)
  2 inclusion           the exact receipt envelope bytes are in the log at the proof's index
  3 receipt             DSSE signature by the executor key; in-toto Statement v1; predicate schema
  4 attestation-record  the executor's record: in the same log, signed by the same key, the key
                        bound into the hardware evidence's report data, at the receipt's index
  5 evidence            the evidence chains to vendor roots at the record's time (+ appraisal policy)

arguments:
  <bundle>            the bundle file, or - for standard input

options:
  --trust FILE        the trust file (JSON; see docs/verify.md); default: $ATTEX_VERIFY_TRUST
  --allow-simulated   accept evidence from the simulated TEE (never for production receipts)
  --json              print one JSON object instead of the summary

Exit codes: 0 verified, 1 not verified, 2 usage or I/O error.`;

const OPTIONS = {
  trust: { type: 'string' },
  json: { type: 'boolean' },
  'allow-simulated': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function readBundle(file: string, io: CommandIO): Promise<Uint8Array> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of io.stdin) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
      total += b.length;
      if (total > MAX_BUNDLE_BYTES) throw new AttexError('verify.io', `bundle on standard input is larger than ${MAX_BUNDLE_BYTES} bytes`);
      chunks.push(b);
    }
    return new Uint8Array(Buffer.concat(chunks));
  }
  return new Uint8Array(await readCliFile(path.resolve(io.cwd, file), file, 'bundle', MAX_BUNDLE_BYTES));
}

/** A regular file of at most `maxBytes` (a FIFO or /dev/zero is refused, not read). */
async function readCliFile(full: string, file: string, what: string, maxBytes: number): Promise<Buffer> {
  try {
    return await readBoundedFile(full, maxBytes);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EFBIG') throw new AttexError('verify.io', `${what} ${file} is larger than ${maxBytes} bytes`);
    throw new AttexError('verify.io', `cannot read ${what} ${file}: ${code === 'ENOTREG' ? 'not a regular file' : (code ?? String(err))}`);
  }
}

async function readTrust(file: string, io: CommandIO, allowSimulated: boolean) {
  const full = path.resolve(io.cwd, file);
  const text = (await readCliFile(full, file, 'trust file', MAX_TRUST_BYTES)).toString('utf8');
  return loadVerifyTrust(parseTrustFile(text), { baseDir: path.dirname(full), allowSimulated });
}

function short(hex: string): string {
  return `${hex.slice(0, 12)}…`;
}

function summary(v: BundleVerification): string[] {
  const lines = [`attex verify: ${v.verified ? 'VERIFIED' : 'NOT VERIFIED'}`];
  const r = v.receipt;
  if (r) {
    const tag = v.verified ? '' : ' (signed claims; the attestation did not verify)';
    lines.push(`  what:   ${r.component.name} (sha256:${short(r.component.digest.sha256)}) ran ${r.invocationId}: input sha256:${short(r.input.digest.sha256)} -> output sha256:${short(r.output.digest.sha256)} (${r.output.bytes} bytes), outcome ${r.outcome}${r.errorCode ? ` ${r.errorCode}` : ''}${tag}`);
    lines.push(`  for:    caller ${r.caller.id}${r.caller.requestSignature ? ` (request signed by ${r.caller.requestSignature.keyId})` : ''}`);
    const sim = v.evidence?.simulated ? ' SIMULATED' : '';
    lines.push(`  where:  executor ${r.executor.id} ${r.executor.version} on ${r.attestation.tee}${sim}, measurement ${short(r.attestation.measurement)}`);
    lines.push(`  when:   ${r.startedAt} .. ${r.finishedAt}`);
  }
  if (v.log) lines.push(`  log:    ${v.log.origin}, entry ${v.log.index} of ${v.log.treeSize}${v.log.recordIndex !== undefined ? ` (attestation record: entry ${v.log.recordIndex})` : ''}`);
  const width = Math.max(...v.steps.map((s) => s.step.length));
  for (const s of v.steps) {
    const mark = s.ok ? '✓' : s.code === 'verify.not-run' ? '-' : '✗';
    lines.push(`  ${mark} ${s.step.padEnd(width)}  ${s.ok || s.code === 'verify.not-run' ? s.message : `[${s.code}] ${s.message}`}`);
  }
  return lines;
}

export const command: Command = {
  name: 'verify',
  summary: 'verify a receipt bundle offline',
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, OPTIONS);
    if (positionals.length !== 1) throw new UsageError('expected exactly one <bundle> argument');
    const trustFile = values.trust ?? io.env.ATTEX_VERIFY_TRUST;
    if (trustFile === undefined || trustFile === '') throw new UsageError('no trust file: pass --trust FILE (or set ATTEX_VERIFY_TRUST)');
    const allowSimulated = values['allow-simulated'] === true;
    const trust = await readTrust(trustFile, io, allowSimulated);
    const bytes = await readBundle(positionals[0]!, io);
    const result = await verifyBundle(bytes, trust, { now: new Date() });
    if (values.json) writeJson(io.stdout, result);
    else for (const line of summary(result)) writeLine(io.stdout, line);
    return result.verified ? EXIT_OK : EXIT_NEGATIVE;
  },
};
