/**
 * Canonical JSON for receipts, with a fast path. The builders create their objects with keys
 * already in sorted order; for such a value JSON.stringify (native) emits exactly the bytes of
 * canonicalJson (same key order, same escaping of strings and numbers), so only a cheap check
 * walks the value. Anything else (unsorted keys, undefined, non-finite numbers, Dates or other
 * non-plain objects, arrays with holes) takes the general encoder. Portable.
 */
import { canonicalJson } from '../util/canonical-json.ts';

const MAX_FAST_DEPTH = 64;

/** True when JSON.stringify(value) equals canonicalJson(value). */
function stringifyIsCanonical(value: unknown, depth: number): boolean {
  if (value === null) return true;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object': {
      if (depth > MAX_FAST_DEPTH) return false;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) if (!(i in value) || !stringifyIsCanonical(value[i], depth + 1)) return false;
        return Object.getPrototypeOf(value) === Array.prototype;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false; // Date, Map, toJSON, …
      const obj = value as Record<string, unknown>;
      if ('toJSON' in obj) return false;
      const keys = Object.keys(obj);
      for (let i = 0; i < keys.length; i++) {
        if (i > 0 && !(keys[i - 1]! < keys[i]!)) return false;
        if (!stringifyIsCanonical(obj[keys[i]!], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/** Exactly canonicalJson(value), faster when the value's keys are already sorted. */
export function canonicalJsonFast(value: unknown): string {
  return stringifyIsCanonical(value, 0) ? JSON.stringify(value) : canonicalJson(value);
}
