import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { quotesAnySecret, secretForms } from '../../src/sandbox/secret-echo.ts';

const secret = new TextEncoder().encode('sk_live_AbC/dEf+GhI&jk9Qz');
const text = 'sk_live_AbC/dEf+GhI&jk9Qz';
const quoted = (body: string, headers: Array<[string, string]> = []) => quotesAnySecret([secret], new TextEncoder().encode(body), headers);

describe('a response that quotes a secret', () => {
  it('is found in the encodings an echo is likely to use, whatever their case', async () => {
    const echoes: Array<[string, string]> = [
      ['as sent', `{"authorization":"Bearer ${text}"}`],
      ['upper-cased', text.toUpperCase()],
      ['lower-cased', text.toLowerCase()],
      ['percent-encoded', encodeURIComponent(text)],
      ['percent-encoded, lower-case hex', encodeURIComponent(text).toLowerCase()],
      ['percent-encoded, slash left as is', encodeURIComponent(text).replace(/%2F/g, '/')],
      ['JSON with escaped slashes', JSON.stringify({ t: text }).replace(/\//g, '\\/')],
      ['JSON with \\u escapes', text.replace(/[^A-Za-z0-9]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)],
      ['HTML-escaped', text.replace(/&/g, '&amp;')],
      ['hex', Buffer.from(text).toString('hex').toUpperCase()],
      ['MIME base64 of the whole request', Buffer.from(`GET / HTTP/1.1\r\nauthorization: Bearer ${text}\r\n\r\n`).toString('base64').replace(/(.{76})/g, '$1\r\n')],
    ];
    for (const [what, body] of echoes) expect([what, await quoted(body)]).toEqual([what, true]);
    expect(await quoted('{}', [['x-seen', `token ${text.toLowerCase()}`]])).toBe(true);
  });

  it('is found in base64 at every alignment, in both alphabets', async () => {
    for (let trial = 0; trial < 20; trial++) {
      const value = randomBytes(10 + trial);
      for (let before = 0; before < 4; before++) {
        for (let after = 0; after < 4; after++) {
          const framed = Buffer.concat([randomBytes(before), value, randomBytes(after)]);
          for (const encoded of [framed.toString('base64'), framed.toString('base64url')]) {
            expect(await quotesAnySecret([value], new TextEncoder().encode(`x ${encoded} y`), []), `${before}/${after}`).toBe(true);
          }
        }
      }
    }
  });

  it('is found across the seams of a large body, which is searched without stalling the event loop', async () => {
    const size = 8 << 20;
    for (const at of [(1 << 20) - 5, (3 << 20) - 12, size - text.length]) {
      const body = Buffer.alloc(size, 'x');
      body.write(text, at, 'latin1');
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 1);
      const start = performance.now();
      expect(await quotesAnySecret([secret], body, []), String(at)).toBe(true);
      clearInterval(ticker);
      // Yielding between chunks lets timers run while a long body is searched.
      if (at > 2 << 20) expect(ticks, String(performance.now() - start)).toBeGreaterThan(0);
    }
    expect(await quotesAnySecret([secret], Buffer.alloc(size, 'x'), [])).toBe(false);
  });

  it('is not found in an ordinary response, and an empty secret matches nothing', async () => {
    expect(await quoted(JSON.stringify({ price: 42.5, currency: 'EUR', note: 'sk_live_ prefix only' }))).toBe(false);
    expect(await quotesAnySecret([new Uint8Array()], new TextEncoder().encode('anything'), [['a', 'b']])).toBe(false);
    expect(await quotesAnySecret([], new TextEncoder().encode(text), [])).toBe(false);
    expect(secretForms(new Uint8Array())).toEqual([]);
  });
});
