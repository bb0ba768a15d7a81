/**
 * Nesting depth of JSON text. An action's output is parsed and re-serialized by the executor and
 * by whoever reads the response; V8's JSON.stringify, like most serializers and many parsers, is
 * recursive, and a few kilobytes of `[[[[…]]]]` exhaust its stack. Outputs are therefore held to
 * MAX_OUTPUT_DEPTH levels, well inside the limits of common JSON libraries.
 */
export const MAX_OUTPUT_DEPTH = 256;

/**
 * True when `text` nests arrays and objects deeper than `max` levels. Linear, no recursion, and
 * meant for text that is already known to be JSON (brackets inside strings are skipped).
 */
export function jsonNestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}
