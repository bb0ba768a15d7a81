/** Shared helpers for the attestation tests: the vendor vectors and an in-process CLI runner. */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { CommandIO } from '../../../src/cli/command.ts';
import { runCli } from '../../../src/cli/main.ts';

export const repoRoot = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
export const vectorsDir = path.resolve(repoRoot, '../shared/vectors');

export interface ExpectedVector {
  readonly kind: 'snp' | 'azure-hcl-snp' | 'tdx';
  readonly now: string;
  readonly expected: { outcome: string; tcb_status?: string; advisory_ids?: string[]; reject_reasons: string[] };
  readonly fields: Record<string, unknown>;
}

export interface Vector {
  readonly name: string;
  readonly dir: string;
  readonly expected: ExpectedVector;
  /** Evidence file (report.bin, hcl-report.bin or quote.bin). */
  readonly evidenceFile: string;
  readonly evidence: Uint8Array;
  /** VCEK/VLEK DER file (SNP kinds). */
  readonly certFile?: string;
  readonly cert?: Uint8Array;
  /** Collateral directory (TDX). */
  readonly collateralDir?: string;
}

export function loadVectors(): Vector[] {
  const expected = JSON.parse(readFileSync(path.join(vectorsDir, 'expected.json'), 'utf8')) as { vectors: Record<string, ExpectedVector> };
  return Object.entries(expected.vectors).map(([name, exp]) => {
    const dir = path.join(vectorsDir, name);
    const files = readdirSync(dir);
    const evidenceFile = path.join(dir, files.find((f) => f.endsWith('.bin'))!);
    const certName = files.find((f) => f.endsWith('.der'));
    const collateralDir = path.join(dir, 'collateral');
    return {
      name,
      dir,
      expected: exp,
      evidenceFile,
      evidence: new Uint8Array(readFileSync(evidenceFile)),
      ...(certName !== undefined && { certFile: path.join(dir, certName), cert: new Uint8Array(readFileSync(path.join(dir, certName))) }),
      ...(existsSync(collateralDir) && { collateralDir }),
    };
  });
}

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run `attex <argv>` in-process with captured output. */
export async function runCaptured(argv: string[], cwd = repoRoot): Promise<CliRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const io: CommandIO = { stdout, stderr, stdin: new PassThrough(), env: {}, cwd };
  const code = await runCli(argv, io);
  await new Promise((r) => setImmediate(r));
  return { code, stdout: out, stderr: err };
}

/** CLI arguments that verify a vector from its raw files. */
export function verifyArgs(v: Vector): string[] {
  const args = ['evidence', 'verify', v.evidenceFile, '--now', v.expected.now];
  if (v.certFile !== undefined) args.push('--cert', v.certFile);
  if (v.collateralDir !== undefined) args.push('--collateral', v.collateralDir);
  return args;
}
