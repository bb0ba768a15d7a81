/** Field checks shared by the statement builders; each throws AttexError `receipt.invalid`. */
import { AttexError } from '../errors/index.ts';

export interface DigestSet {
  readonly sha256: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;
const ID = /^[\x21-\x7e]{1,256}$/;

function invalid(message: string): AttexError {
  return new AttexError('receipt.invalid', message);
}

export function digestSet(hex: string): DigestSet {
  return { sha256: hex };
}

/** Lowercase hex SHA-256, with or without a "sha256:" prefix; returns the bare hex. */
export function hexDigest(v: unknown, what: string): string {
  if (typeof v !== 'string') throw invalid(`${what} must be a hex SHA-256 digest`);
  const hex = v.startsWith('sha256:') ? v.slice(7) : v;
  if (!/^[0-9a-f]{64}$/.test(hex)) throw invalid(`${what} must be a lowercase hex SHA-256 digest`);
  return hex;
}

export function checkId(v: unknown, what: string): string {
  if (typeof v !== 'string' || !ID.test(v)) throw invalid(`${what} must be 1..256 printable ASCII characters without spaces`);
  return v;
}

export function checkNameList(names: readonly string[], what: string): string[] {
  if (!Array.isArray(names) || names.length > 256) throw invalid(`${what} must be a list of at most 256 names`);
  return names.map((n, i) => {
    if (typeof n !== 'string' || !NAME.test(n)) throw invalid(`${what}[${i}] is not a valid name`);
    return n;
  });
}

export function checkCount(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalid(`${what} must be a non-negative integer`);
  return v;
}

/** RFC 3339 UTC from an explicit Date (the builders never read the clock). */
export function rfc3339(d: unknown, what: string): string {
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) throw invalid(`${what} must be a valid Date`);
  const s = d.toISOString();
  if (!/^\d{4}-/.test(s)) throw invalid(`${what} is outside years 0000..9999`);
  return s;
}

export function sortedUnique(list: readonly string[]): string[] {
  return [...new Set(list)].sort();
}
