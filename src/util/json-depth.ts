/**
 * Nesting depth of JSON text, measured without parsing. V8's JSON.stringify, like most
 * serializers and many parsers, is recursive, and a few kilobytes of `[[[[…]]]]` exhaust its
 * stack or cost a parser far more than their size suggests: untrusted JSON is held to a depth
 * before anything recursive sees it (action outputs, broker request bodies).
 */
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
