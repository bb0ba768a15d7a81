// HMAC-SHA-256 a payload with a secret the action never sees: the host computes the MAC from a
// handle. The output carries the MAC and the key's name, never the key.
import secrets from 'attex:action/secrets@0.1.0';

function utf8Encode(text) {
  const bin = unescape(encodeURIComponent(text));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function hex(bytes) {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

export const action = {
  run(input) {
    const { payload, key = 'signing-key' } = JSON.parse(input);
    let secret;
    try {
      secret = secrets.open(key);
    } catch (e) {
      const err = e && e.payload !== undefined ? e.payload : e;
      throw { code: `secret-${err.tag ?? 'error'}`, message: String(err.val ?? key) };
    }
    const message = JSON.stringify(payload);
    const mac = secret.hmacSha256(utf8Encode(message));
    return JSON.stringify({ alg: 'HS256', key: secret.name(), message, signature: hex(mac) });
  },
};
