/** Signing dispatch requests, as a client does (the `http-message-signatures` library). */
import { type KeyObject, randomBytes, sign as edSign } from 'node:crypto';
import { httpbis } from 'http-message-signatures';
import { COVERED_COMPONENTS, SIGNATURE_LABEL, contentDigest } from './common.ts';

export async function signRequest(
  req: { method: string; url: string; headers?: Record<string, string>; body: Uint8Array },
  key: { keyId: string; privateKey: KeyObject },
  now: Date = new Date(),
): Promise<Record<string, string>> {
  const url = new URL(req.url, 'http://attex.invalid');
  const headers: Record<string, string> = { ...req.headers, 'content-digest': contentDigest(req.body) };
  const signed = await httpbis.signMessage(
    {
      key: { id: key.keyId, alg: 'ed25519', sign: async (data: Buffer) => edSign(null, data, key.privateKey) },
      name: SIGNATURE_LABEL,
      // An Idempotency-Key decides whether the request runs: the executor requires it covered.
      fields: [...COVERED_COMPONENTS, ...(headers['idempotency-key'] !== undefined ? ['idempotency-key'] : [])],
      params: ['created', 'keyid', 'alg', 'nonce'],
      paramValues: { created: now, nonce: randomBytes(16).toString('base64url') },
    },
    { method: req.method.toUpperCase(), url: url.href, headers },
  );
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(signed.headers)) out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
  return out;
}
