/**
 * JSON parsing for hostile input: valid UTF-8, RFC 8259 grammar, a nesting limit and no
 * duplicate object keys. JSON.parse keeps the last of two equal keys while other parsers may
 * keep the first, so a signed document with duplicates could mean different things to
 * different verifiers; we refuse it instead. Portable (no Node APIs).
 */
const MAX_DEPTH = 64;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export class StrictJsonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StrictJsonError';
  }
}

export function decodeUtf8Strict(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new StrictJsonError('not valid UTF-8');
  }
}

/** Parse bytes (UTF-8) or text; throws StrictJsonError. */
export function parseStrictJson(input: Uint8Array | string): unknown {
  const text = typeof input === 'string' ? input : decodeUtf8Strict(input);
  if (text.charCodeAt(0) === 0xfeff) throw new StrictJsonError('byte order mark is not allowed');
  const scanner = new Scanner(text);
  scanner.skipWs();
  scanner.value(0);
  scanner.skipWs();
  if (scanner.at !== text.length) throw new StrictJsonError(`unexpected data at offset ${scanner.at}`);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new StrictJsonError(err instanceof Error ? err.message : 'invalid JSON');
  }
}

class Scanner {
  at = 0;
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }

  fail(what: string): never {
    throw new StrictJsonError(`${what} at offset ${this.at}`);
  }

  skipWs(): void {
    const t = this.text;
    while (this.at < t.length) {
      const c = t.charCodeAt(this.at);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.at++;
      else break;
    }
  }

  value(depth: number): void {
    if (depth > MAX_DEPTH) this.fail('nesting too deep');
    const c = this.text[this.at];
    if (c === '{') this.object(depth + 1);
    else if (c === '[') this.array(depth + 1);
    else if (c === '"') this.string();
    else if (c === 't') this.literal('true');
    else if (c === 'f') this.literal('false');
    else if (c === 'n') this.literal('null');
    else this.number();
  }

  literal(word: string): void {
    if (!this.text.startsWith(word, this.at)) this.fail('invalid literal');
    this.at += word.length;
  }

  number(): void {
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(this.text.slice(this.at, this.at + 400));
    if (!m || m[0].length === 0) this.fail('invalid value');
    this.at += m[0].length;
  }

  /** Returns the raw string literal (quotes included) so keys can be decoded and compared. */
  string(): string {
    const start = this.at;
    const t = this.text;
    this.at++;
    while (this.at < t.length) {
      const c = t.charCodeAt(this.at);
      if (c === 0x22) {
        this.at++;
        return t.slice(start, this.at);
      }
      if (c < 0x20) this.fail('control character in string');
      if (c === 0x5c) {
        const e = t[this.at + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(t.slice(this.at + 2, this.at + 6))) this.fail('invalid \\u escape');
          this.at += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) this.at += 2;
        else this.fail('invalid escape');
      } else this.at++;
    }
    return this.fail('unterminated string');
  }

  object(depth: number): void {
    this.at++;
    const keys = new Set<string>();
    this.skipWs();
    if (this.text[this.at] === '}') {
      this.at++;
      return;
    }
    for (;;) {
      this.skipWs();
      if (this.text[this.at] !== '"') this.fail('expected a key');
      const key = JSON.parse(this.string()) as string;
      if (keys.has(key)) this.fail(`duplicate key ${JSON.stringify(key.slice(0, 64))}`);
      keys.add(key);
      this.skipWs();
      if (this.text[this.at] !== ':') this.fail("expected ':'");
      this.at++;
      this.skipWs();
      this.value(depth);
      this.skipWs();
      const c = this.text[this.at++];
      if (c === '}') return;
      if (c !== ',') this.fail("expected ',' or '}'");
    }
  }

  array(depth: number): void {
    this.at++;
    this.skipWs();
    if (this.text[this.at] === ']') {
      this.at++;
      return;
    }
    for (;;) {
      this.skipWs();
      this.value(depth);
      this.skipWs();
      const c = this.text[this.at++];
      if (c === ']') return;
      if (c !== ',') this.fail("expected ',' or ']'");
    }
  }
}
