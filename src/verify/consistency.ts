/**
 * Checks on what a valid signature covers: a receipt or record whose fields contradict each
 * other (a finish before its start, inlined content that is not what its digest names, an
 * error without a code) came from a broken executor or from someone holding its key, and is
 * refused rather than believed. Pure and portable: no clock, no node:crypto.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import type { AttestationRecordPredicate } from '../receipts/attestation-record.ts';
import { decodeBase64Canonical } from '../receipts/base64.ts';
import { sha256Portable } from '../receipts/ed25519.ts';
import type { ExecutionPredicate } from '../receipts/execution.ts';
import { canonicalJson } from '../util/canonical-json.ts';

/** How far a signed time may lie ahead of the verifier's clock. */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

const INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$/;

/** Milliseconds since the epoch of an RFC 3339 UTC time, or undefined unless it names a real instant (no 31 February). */
export function strictInstant(text: string): number | undefined {
  const m = INSTANT.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || back.getUTCHours() !== h || back.getUTCMinutes() !== mi || back.getUTCSeconds() !== s) return undefined;
  return ms + Number(`0.${m[7] ?? '0'}`) * 1000;
}

function contentProblem(name: 'input' | 'output', v: ExecutionPredicate['input']): string | undefined {
  if (v.content === undefined) return undefined;
  const bytes = decodeBase64Canonical(v.content);
  if (bytes === null) return `${name}.content is not canonical base64`;
  if (bytes.length !== v.bytes) return `${name}.content holds ${bytes.length} bytes, ${name}.bytes says ${v.bytes}`;
  if (bytesToHex(sha256Portable(bytes)) !== v.digest.sha256) return `${name}.content does not hash to ${name}.digest`;
  return undefined;
}

/** The first contradiction among a receipt's own fields, or undefined. */
export function receiptContradiction(p: ExecutionPredicate, subjects: readonly { readonly name?: string }[]): string | undefined {
  if (subjects.length !== 1 || subjects[0]!.name !== 'output') return 'a receipt has exactly one subject, the output';
  const started = strictInstant(p.startedAt);
  const finished = strictInstant(p.finishedAt);
  if (started === undefined || finished === undefined) return 'startedAt and finishedAt must be real RFC 3339 UTC instants';
  if (finished < started) return 'finishedAt is before startedAt';
  if ((p.outcome === 'error') !== (p.errorCode !== undefined)) return 'an error outcome, and only an error outcome, carries an errorCode';
  const granted = new Set(p.capabilities.granted.secrets);
  const ungranted = p.capabilities.used.secrets.find((s) => !granted.has(s));
  if (ungranted !== undefined) return `used secret '${ungranted}' was not granted`;
  const outside = p.capabilities.used.hosts.find((h) => !hostGranted(h, p.capabilities.granted.hosts));
  if (outside !== undefined) return `used host '${outside}' is not in the grant`;
  return contentProblem('input', p.input) ?? contentProblem('output', p.output);
}

interface HostPort {
  readonly host: string;
  readonly port: number | undefined;
}

function hostPort(text: string): HostPort {
  const lower = text.toLowerCase();
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(lower);
  // A grant may write its port with leading zeros (:0443); the executor reads it as a number.
  return m ? { host: m[1]!, port: m[2] === undefined ? undefined : Number(m[2]) } : { host: lower, port: undefined };
}

/**
 * Whether a used host is covered by a granted one: the same name or, for a `*.` grant, a name
 * under it, on the same port. Receipts record hosts without their scheme (schema: hostList), so
 * a port left out (the scheme's default) matches 80 or 443, and names are compared without case
 * (a grant may be written in capitals; URLs lower-case what was contacted).
 */
export function hostGranted(used: string, granted: readonly string[]): boolean {
  if (used.includes('*')) return false; // a host contacted is a name, never a pattern
  const u = hostPort(used);
  return granted.some((grant) => {
    const g = hostPort(grant);
    const suffix = g.host.startsWith('*.') ? g.host.slice(1) : undefined; // `.example.com`
    const nameMatches = suffix === undefined ? u.host === g.host : u.host.length > suffix.length && u.host.endsWith(suffix);
    if (!nameMatches) return false;
    if (u.port === g.port) return true;
    const explicit = u.port ?? g.port;
    return (u.port === undefined || g.port === undefined) && (explicit === 80 || explicit === 443);
  });
}

/** The first contradiction between an attestation record and a receipt that names it, or undefined. */
export function recordContradiction(rec: AttestationRecordPredicate, receipt: ExecutionPredicate): string | undefined {
  const created = strictInstant(rec.createdAt);
  if (created === undefined) return 'the record\'s createdAt is not a real RFC 3339 UTC instant';
  if (canonicalJson(rec.keys.teePublicKey) !== canonicalJson(rec.runtimeData['tee-pubkey'])) return 'the record\'s keys.teePublicKey is not the TEE key its runtime data (and so its evidence) binds';
  if (strictInstant(receipt.startedAt)! < created) return 'the receipt started before its executor\'s attestation record was created';
  return undefined;
}

/** A signed time later than the verifier's clock allows, or undefined. */
export function fromTheFuture(times: Readonly<Record<string, string>>, now: Date): string | undefined {
  for (const [name, text] of Object.entries(times)) {
    const at = strictInstant(text);
    if (at !== undefined && at > now.getTime() + MAX_CLOCK_SKEW_MS) return `${name} ${text} is later than the verifier's clock (${now.toISOString()}) allows`;
  }
  return undefined;
}
