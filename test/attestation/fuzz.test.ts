/**
 * Property test over hostile inputs: more than 10,000 bit flips and truncations of every vendor
 * vector's evidence, certificate and collateral, from a fixed PRNG seed. For every input:
 * verifyEvidence returns (never throws) within a bound, and a mutation inside a signed region is
 * never accepted. Signed regions, derived here from the formats (not from the verifiers):
 *   SNP report        [0, 0x2A0) signed + [0x2A0, 0x330) signature
 *   Azure HCL         the SNP report at 0x20, and the runtime claims its REPORT_DATA hashes
 *   TDX quote         header + body + the whole signature data (QE report, auth data, PCK chain)
 *   certificates/CRLs every DER byte; PEM text wherever it changes the certificates it encodes
 *   PCS JSON          every byte (a case flip of a signature hex digit encodes the same signature)
 */
import { describe, expect, it } from 'vitest';
import { type EvidencePackage, type EvidencePackageCollateral, loadTrustStore, verifyEvidence } from '../../src/attestation/index.ts';
import type { TrustStore, VerificationResult } from '../../src/attestation/types.ts';
import { COLLATERAL_FILES } from '../../src/attestation/evidence/index.ts';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type Vector, loadVectors } from './evidence/vectors.ts';

const SEED = 0x5eed_a77e;
/** A verification that takes longer than this is a hang, not a slow machine. */
const HANG_BOUND_MS = 10_000;

/** mulberry32: small, fast, deterministic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const u16 = (b: Uint8Array, o: number) => b[o]! | (b[o + 1]! << 8);
const u32 = (b: Uint8Array, o: number) => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)) + b[o + 3]! * 0x1000000;

/** Certificates a PEM text encodes, decoded leniently (as forgiving as any parser could be). */
function pemCertificates(bytes: Uint8Array): string {
  const text = Buffer.from(bytes).toString('latin1');
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)]
    .map((m) => Buffer.from(m[1]!.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64').toString('hex'))
    .join('|');
}

/** One mutable input of a vector, and which of its mutations must be rejected. */
interface Part {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly flips: number;
  readonly truncations: number;
  /** Must a package whose part is `mutated` (flip at `offset`, or a truncation) be rejected? */
  mustReject(mutated: Uint8Array, offset: number | null): boolean;
}

function tdxSignedEnd(quote: Uint8Array): { signedEnd: number; pemStart: number; pemEnd: number } {
  const version = u16(quote, 0);
  const bodyEnd = version === 4 ? 48 + 584 : 54 + u32(quote, 50);
  const sigLen = u32(quote, bodyEnd);
  const sigData = bodyEnd + 4;
  // signature (64) + key (64) + type 6 header (6) + QE report (384) + QE signature (64)
  const authLenAt = sigData + 64 + 64 + 6 + 384 + 64;
  const pemHeader = authLenAt + 2 + u16(quote, authLenAt);
  const pemStart = pemHeader + 6;
  return { signedEnd: sigData + sigLen, pemStart, pemEnd: pemStart + u32(quote, pemHeader + 2) };
}

function evidencePart(v: Vector, flips: number, truncations: number): Part {
  const bytes = v.evidence;
  if (v.expected.kind === 'snp') {
    return { name: 'report', bytes, flips, truncations, mustReject: (_m, offset) => offset === null || offset < 0x330 };
  }
  if (v.expected.kind === 'azure-hcl-snp') {
    const claimsEnd = 0x4d4 + u32(bytes, 0x4c0 + 16);
    return {
      name: 'hcl-report',
      bytes,
      flips,
      truncations,
      mustReject: (m, offset) => (offset === null ? m.length < claimsEnd : (offset >= 0x20 && offset < 0x20 + 0x330) || (offset >= 0x4d4 && offset < claimsEnd)),
    };
  }
  const { signedEnd, pemStart, pemEnd } = tdxSignedEnd(bytes);
  const originalChain = pemCertificates(bytes.subarray(pemStart, pemEnd));
  return {
    name: 'quote',
    bytes,
    flips,
    truncations,
    mustReject: (m, offset) => {
      if (offset === null) return m.length < signedEnd;
      if (offset >= pemStart && offset < pemEnd) return pemCertificates(m.subarray(pemStart, pemEnd)) !== originalChain;
      return offset < signedEnd;
    },
  };
}

function derPart(name: string, bytes: Uint8Array, flips: number, truncations: number): Part {
  return { name, bytes, flips, truncations, mustReject: () => true };
}

function pemPart(name: string, bytes: Uint8Array, flips: number, truncations: number): Part {
  const original = pemCertificates(bytes);
  return { name, bytes, flips, truncations, mustReject: (m) => pemCertificates(m) !== original };
}

function pcsJsonPart(name: string, bytes: Uint8Array, flips: number, truncations: number): Part {
  const text = Buffer.from(bytes).toString('latin1');
  const sigStart = text.lastIndexOf('"signature":"') + '"signature":"'.length;
  const sigEnd = text.indexOf('"', sigStart);
  const isHex = (c: number) => /[0-9a-fA-F]/.test(String.fromCharCode(c));
  return {
    name,
    bytes,
    flips,
    truncations,
    mustReject: (m, offset) => {
      if (offset === null || offset < sigStart || offset >= sigEnd) return true;
      const [a, b] = [bytes[offset]!, m[offset]!];
      return !(isHex(a) && isHex(b) && String.fromCharCode(a).toLowerCase() === String.fromCharCode(b).toLowerCase());
    },
  };
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

/** The vector's package with `part` replaced by `mutated` (no validation: the front door does that). */
function packageWith(v: Vector, partName: string, mutated: Uint8Array): EvidencePackage {
  const evidence = partName === 'report' || partName === 'hcl-report' || partName === 'quote' ? mutated : v.evidence;
  if (v.expected.kind !== 'tdx') return { kind: v.expected.kind, evidence: b64(evidence), certs: [b64(partName === 'cert' ? mutated : v.cert!)] };
  const collateral: EvidencePackageCollateral = {};
  for (const [item, file] of Object.entries(COLLATERAL_FILES) as [keyof EvidencePackageCollateral, string][]) {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(path.join(v.collateralDir!, file)));
    } catch {
      continue;
    }
    if (item === partName) bytes = mutated;
    collateral[item] = file.endsWith('.pem') ? Buffer.from(bytes).toString('latin1') : b64(bytes);
  }
  return { kind: 'tdx', evidence: b64(evidence), collateral };
}

function partsOf(v: Vector): Part[] {
  if (v.expected.kind !== 'tdx') return [evidencePart(v, 720, 60), derPart('cert', v.cert!, 230, 30)];
  const parts = [evidencePart(v, 520, 50)];
  for (const [item, file] of Object.entries(COLLATERAL_FILES)) {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(path.join(v.collateralDir!, file)));
    } catch {
      continue;
    }
    if (file.endsWith('.pem')) parts.push(pemPart(item, bytes, 70, 10));
    else if (file.endsWith('.json')) parts.push(pcsJsonPart(item, bytes, 90, 10));
    else parts.push(derPart(item, bytes, 70, 10));
  }
  return parts;
}

async function boundedVerify(pkg: EvidencePackage, trust: TrustStore, now: Date): Promise<{ result?: VerificationResult; error?: unknown; ms: number }> {
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const hang = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('no answer within the bound')), HANG_BOUND_MS);
    });
    const result = await Promise.race([verifyEvidence(pkg, { trust, now }), hang]);
    return { result, ms: performance.now() - start };
  } catch (error) {
    return { error, ms: performance.now() - start };
  } finally {
    clearTimeout(timer);
  }
}

describe('fuzz: mutated evidence, certificates and collateral', () => {
  it('never throws, never hangs, never accepts a mutation inside a signed region', { timeout: 300_000 }, async () => {
    const trust = await loadTrustStore({ allowSimulated: false });
    const random = prng(SEED);
    const failures: string[] = [];
    let total = 0;
    let signedMutations = 0;
    const kinds = new Map<string, number>();

    for (const v of loadVectors()) {
      const now = new Date(v.expected.now);
      const baseline = await verifyEvidence(packageWith(v, '', new Uint8Array()), { trust, now });
      expect(baseline.outcome, `${v.name} unmutated`).toBe(v.expected.expected.outcome);
      for (const part of partsOf(v)) {
        const cases: { mutated: Uint8Array; offset: number | null; what: string }[] = [];
        for (let i = 0; i < part.flips; i++) {
          const offset = Math.floor(random() * part.bytes.length);
          const bit = 1 << Math.floor(random() * 8);
          const mutated = part.bytes.slice();
          mutated[offset]! ^= bit;
          cases.push({ mutated, offset, what: `flip 0x${bit.toString(16)} at ${offset}` });
        }
        for (let i = 0; i < part.truncations; i++) {
          const length = Math.floor(random() * part.bytes.length);
          cases.push({ mutated: part.bytes.slice(0, length), offset: null, what: `truncate to ${length}` });
        }
        for (const c of cases) {
          total++;
          kinds.set(v.expected.kind, (kinds.get(v.expected.kind) ?? 0) + 1);
          const label = `${v.name} ${part.name} ${c.what}`;
          const { result, error, ms } = await boundedVerify(packageWith(v, part.name, c.mutated), trust, now);
          if (error !== undefined) failures.push(`${label}: threw ${String(error)}`);
          else if (ms > HANG_BOUND_MS) failures.push(`${label}: took ${Math.round(ms)} ms`);
          else if (part.mustReject(c.mutated, c.offset)) {
            signedMutations++;
            if (result!.outcome !== 'reject') failures.push(`${label}: ${result!.outcome} for a mutation inside a signed region`);
          } else if (result!.reasons.some((r) => typeof r.code !== 'string' || r.code === '')) {
            failures.push(`${label}: reason without a code`);
          }
        }
      }
    }
    if (process.env.FUZZ_DUMP) console.log(failures.join("\n"));
    expect(failures.slice(0, 20)).toEqual([]);
    expect(total).toBeGreaterThanOrEqual(10_000);
    expect(signedMutations).toBeGreaterThan(total / 2);
    expect([...kinds.keys()].sort()).toEqual(['azure-hcl-snp', 'snp', 'tdx']);
  });
});
