/**
 * Finding a secret that an origin hands back. A guest may have the host send a secret it never
 * sees (secret headers) or use one through a handle (secret.open); an origin that echoes
 * requests (a debug endpoint, an error page quoting the Authorization header, a request bin
 * read back later in the run) would otherwise give it to the guest. Responses are searched,
 * without regard to case, for the encodings such an echo is likely to use; a hostile origin
 * that transforms the value (splits, reverses, encrypts it) is not caught (docs/manifest.md).
 */

/** Shorter fragments (of an unaligned base64 form) would turn up in ordinary responses by chance. */
const MIN_FRAGMENT = 8;

const hex2 = (c: string) => c.charCodeAt(0).toString(16).padStart(2, '0');

/**
 * The secret in base64 (either alphabet) as it appears inside a longer encoded text starting at
 * any byte offset: for each of the three alignments, the characters that depend on the secret's
 * bytes alone (padding and the characters mixed with neighbouring bytes dropped).
 */
function base64Fragments(raw: Buffer): string[] {
  const out: string[] = [];
  for (let shift = 0; shift < 3; shift++) {
    const encoded = Buffer.concat([Buffer.alloc(shift), raw]).toString('base64').replace(/=+$/, '');
    const start = shift === 0 ? 0 : shift + 1;
    const end = (shift + raw.length) % 3 === 0 ? encoded.length : encoded.length - 1;
    const fragment = encoded.slice(start, end);
    if (shift === 0 || fragment.length >= MIN_FRAGMENT) out.push(fragment, fragment.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return out;
}

/** The lower-cased forms of `secret` to look for: as is, URL, form, JSON and HTML escaped, hex, base64. */
export function secretForms(secret: Uint8Array): string[] {
  const raw = Buffer.from(secret);
  const text = raw.toString('latin1');
  const percent = encodeURIComponent(text);
  const json = JSON.stringify(text).slice(1, -1);
  const forms = [
    text,
    percent,
    percent.replace(/%2F/g, '/'),
    percent.replace(/%20/g, '+'),
    json,
    json.replace(/\//g, '\\/'),
    text.replace(/[^A-Za-z0-9]/g, (c) => `\\u00${hex2(c)}`),
    text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;'),
    raw.toString('hex'),
    ...base64Fragments(raw),
  ];
  return [...new Set(forms.map((f) => f.toLowerCase()))].filter((f) => f.length > 0);
}

/** Bodies are searched a mebibyte at a time, yielding in between: a response may be 256 MiB. */
const CHUNK = 1 << 20;

/**
 * Whether a response's body or header lines hold a form of any of `secrets`. Case is ignored, and
 * the body is searched with its line breaks removed too, since MIME base64 wraps its lines every
 * 76 characters.
 */
export async function quotesAnySecret(secrets: readonly Uint8Array[], body: Uint8Array, headers: ReadonlyArray<readonly [string, string]>): Promise<boolean> {
  const forms = [...new Set(secrets.flatMap((s) => secretForms(s)))];
  if (forms.length === 0) return false;
  const found = (text: string) => forms.some((f) => text.includes(f));
  if (found(headers.map(([n, v]) => `${n}: ${v}`).join('\n').toLowerCase())) return true;
  // Chunks overlap by enough raw bytes for the longest form, line breaks included, to fit whole.
  const longest = Math.max(...forms.map((f) => f.length));
  const overlap = 2 * longest + 2;
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  for (let start = 0; start < bytes.length; start += CHUNK) {
    const end = Math.min(bytes.length, start + CHUNK + overlap);
    // latin1: each byte stays one character.
    const text = bytes.toString('latin1', start, end).toLowerCase();
    if (found(text) || (/[\r\n]/.test(text) && found(text.replace(/[\r\n]+/g, '')))) return true;
    if (end < bytes.length) await new Promise((resolve) => setImmediate(resolve));
  }
  return false;
}
