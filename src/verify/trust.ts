/**
 * The verifier's trust file (JSON, documented in docs/verify.md) and turning it into a
 * VerifyTrust. This is the I/O edge: it reads roots, simulated roots and policy files.
 */
import path from 'node:path';
import { type AppraisalPolicy, loadPolicy } from '../attestation/appraisal/index.ts';
import { type AmdRootSet, type IntelRoot, loadTrustStore } from '../attestation/index.ts';
import { AttexError } from '../errors/index.ts';
import { parseVerifierKey } from '../ledger/index.ts';
import { decodeBase64 } from '../receipts/base64.ts';
import { parseStrictJson } from '../receipts/strict-json.ts';
import { readBoundedFile } from '../util/index.ts';
import type { VerifyTrust } from './verify.ts';

export interface TrustFile {
  /** The log's C2SP signed-note verifier key. */
  readonly logVerifierKey: string;
  readonly origin?: string;
  readonly witnessVerifierKeys?: readonly string[];
  readonly requireWitness?: boolean;
  /** Optional pin: executor receipt keys (64 hex digits or base64 of the 32 raw bytes). */
  readonly executorKeys?: readonly string[];
  /** Vendor roots directory (relative to the trust file); default: the project's attestation/roots. */
  readonly rootsDir?: string;
  /** A simulated TEE's state directory whose roots are added, flagged simulated: accepted only with allowSimulated. */
  readonly simulatedStateDir?: string;
  /** An appraisal policy: inline JSON, or a path (relative to the trust file) to one. */
  readonly appraisalPolicy?: unknown;
  readonly allowSimulated?: boolean;
}

const KEYS = ['logVerifierKey', 'origin', 'witnessVerifierKeys', 'requireWitness', 'executorKeys', 'rootsDir', 'simulatedStateDir', 'appraisalPolicy', 'allowSimulated', '$comment'];

function invalid(message: string): AttexError {
  return new AttexError('verify.trust-invalid', `trust file: ${message}`);
}

/** Validate the trust file's shape. Throws `verify.trust-invalid` naming the member. */
export function parseTrustFile(input: unknown): TrustFile {
  let json = input;
  if (typeof input === 'string' || input instanceof Uint8Array) {
    try {
      json = parseStrictJson(input);
    } catch (err) {
      throw invalid(`not valid JSON (${err instanceof Error ? err.message : 'parse error'})`);
    }
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw invalid('must be a JSON object');
  const t = json as Record<string, unknown>;
  for (const k of Object.keys(t)) if (!KEYS.includes(k)) throw invalid(`unknown member ${JSON.stringify(k.slice(0, 64))}`);
  if (typeof t.logVerifierKey !== 'string') throw invalid('logVerifierKey must be a vkey string');
  try {
    parseVerifierKey(t.logVerifierKey);
  } catch (err) {
    throw invalid(`logVerifierKey: ${err instanceof Error ? err.message : String(err)}`);
  }
  const strings = (k: string) => {
    const v = t[k];
    if (v !== undefined && (!Array.isArray(v) || v.some((s) => typeof s !== 'string'))) throw invalid(`${k} must be a list of strings`);
  };
  strings('witnessVerifierKeys');
  strings('executorKeys');
  for (const k of ['origin', 'rootsDir', 'simulatedStateDir']) if (t[k] !== undefined && typeof t[k] !== 'string') throw invalid(`${k} must be a string`);
  for (const k of ['requireWitness', 'allowSimulated']) if (t[k] !== undefined && typeof t[k] !== 'boolean') throw invalid(`${k} must be true or false`);
  for (const [i, v] of ((t.witnessVerifierKeys as string[] | undefined) ?? []).entries()) {
    try {
      parseVerifierKey(v);
    } catch (err) {
      throw invalid(`witnessVerifierKeys[${i}]: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (t.requireWitness === true && ((t.witnessVerifierKeys as string[] | undefined) ?? []).length === 0) {
    throw invalid('requireWitness needs at least one witnessVerifierKeys entry');
  }
  for (const [i, v] of ((t.executorKeys as string[] | undefined) ?? []).entries()) {
    if (parseExecutorKey(v) === null) throw invalid(`executorKeys[${i}] is not a 32-byte Ed25519 key (hex or base64)`);
  }
  return t as unknown as TrustFile;
}

export function parseExecutorKey(text: string): Uint8Array | null {
  const s = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(s)) return new Uint8Array(Buffer.from(s, 'hex'));
  const b = decodeBase64(s);
  return b !== null && b.length === 32 ? b : null;
}

/**
 * Load everything a trust file points at. `allowSimulated` (the CLI flag) can only widen what
 * the file says. Throws AttexError (`verify.trust-invalid`, `trust.*`, `policy.invalid`).
 */
export async function loadVerifyTrust(file: TrustFile, opts: { baseDir: string; allowSimulated?: boolean }): Promise<VerifyTrust> {
  const allowSimulated = opts.allowSimulated === true || file.allowSimulated === true;
  const resolve = (p: string) => path.resolve(opts.baseDir, p);
  let extraAmd: AmdRootSet[] = [];
  let extraIntel: IntelRoot[] = [];
  if (file.simulatedStateDir !== undefined) {
    // Loaded even when not allowed, so a rejection can name the simulated root it chains to.
    const { loadSimulatedRoots } = await import('../attestation/sim/index.ts');
    const sim = await loadSimulatedRoots(resolve(file.simulatedStateDir));
    extraAmd = sim.amd;
    extraIntel = sim.intel;
  }
  const evidence = await loadTrustStore({
    ...(file.rootsDir !== undefined ? { rootsDir: resolve(file.rootsDir) } : {}),
    extraAmd,
    extraIntel,
    allowSimulated,
  });
  let appraisalPolicy: AppraisalPolicy | undefined;
  if (file.appraisalPolicy !== undefined) {
    let source = file.appraisalPolicy;
    if (typeof source === 'string') {
      let text: string;
      try {
        text = (await readBoundedFile(resolve(source), 1 << 20)).toString('utf8');
      } catch (err) {
        throw invalid(`cannot read appraisalPolicy ${source}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      source = text;
    }
    if (typeof source === 'string' && !source.trimStart().startsWith('{')) throw invalid('appraisalPolicy file does not hold a JSON object');
    appraisalPolicy = loadPolicy(source);
  }
  return {
    logVerifierKey: file.logVerifierKey,
    ...(file.origin !== undefined ? { origin: file.origin } : {}),
    ...(file.witnessVerifierKeys ? { witnessVerifierKeys: file.witnessVerifierKeys } : {}),
    ...(file.requireWitness ? { requireWitness: true } : {}),
    ...(file.executorKeys ? { executorKeys: file.executorKeys.map((k) => parseExecutorKey(k)!) } : {}),
    evidence,
    ...(appraisalPolicy !== undefined ? { appraisalPolicy } : {}),
    allowSimulated,
  };
}
