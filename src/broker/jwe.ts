/**
 * Resource responses: a flattened JWE (Trustee's `Response`) encrypting the resource to the
 * TEE public key from the attested runtime data. EC keys: ECDH-ES+A256KW, RSA keys:
 * RSA-OAEP-256; content: A256GCM. The TEE key is validated before use: a malformed key is a
 * client error, not a crash.
 */
import { FlattenedEncrypt, flattenedDecrypt, importJWK, type CryptoKey, type JWK, type KeyObject } from 'jose';
import { AttexError } from '../errors/index.ts';
import type { KbsResponse, TeePubKey } from './protocol.ts';

export const CONTENT_ENCRYPTION = 'A256GCM';

export function keyManagementAlg(key: TeePubKey): 'ECDH-ES+A256KW' | 'RSA-OAEP-256' {
  return key.kty === 'EC' ? 'ECDH-ES+A256KW' : 'RSA-OAEP-256';
}

/** Import the TEE key as a public key usable for the JWE; throws AttexError `broker.tee-pubkey`. */
export async function importTeePublicKey(key: TeePubKey): Promise<CryptoKey | KeyObject | Uint8Array> {
  const alg = keyManagementAlg(key);
  const jwk: JWK = key.kty === 'EC' ? { kty: 'EC', crv: key.crv, x: key.x, y: key.y } : { kty: 'RSA', n: key.n, e: key.e };
  if (key.kty === 'RSA') assertSoundRsaKey(key.n, key.e);
  try {
    const imported = await importJWK(jwk, alg);
    if (imported instanceof Uint8Array) throw new Error('symmetric');
    return imported;
  } catch {
    throw new AttexError('broker.tee-pubkey', 'tee-pubkey is not a usable public key for its algorithm');
  }
}

/**
 * An RSA key that imports is not necessarily one that encrypts: with e = 1 the "ciphertext" is
 * the padded plaintext, and an even modulus fails only at encryption time. Require what any
 * real TEE client generates: a 2048-8192-bit odd modulus and an odd exponent of at least 65537.
 */
function assertSoundRsaKey(nB64: string, eB64: string): void {
  const n = Buffer.from(nB64, 'base64url');
  const e = Buffer.from(eB64, 'base64url');
  // JWA (RFC 7518 §6.3.1.1) encodes n in the fewest octets: a leading zero octet would count as
  // 8 bits and let a 2047-bit modulus through, which the JWE encryption itself then refuses.
  const bits = n.length === 0 || n[0] === 0 ? 0 : (n.length - 1) * 8 + (32 - Math.clz32(n[0]!));
  const exponent = e.length === 0 || e.length > 8 ? 0n : BigInt(`0x${e.toString('hex')}`);
  if (bits < 2048 || bits > 8192 || (n[n.length - 1]! & 1) === 0 || exponent < 65537n || (exponent & 1n) === 0n) {
    throw new AttexError('broker.tee-pubkey', 'tee-pubkey is not a sound RSA key (a 2048-8192-bit odd modulus and an odd exponent of at least 65537)');
  }
}

export async function encryptToTee(key: TeePubKey, plaintext: Uint8Array): Promise<KbsResponse> {
  const publicKey = await importTeePublicKey(key);
  const jwe = await new FlattenedEncrypt(plaintext)
    .setProtectedHeader({ alg: keyManagementAlg(key), enc: CONTENT_ENCRYPTION })
    .encrypt(publicKey);
  if (jwe.encrypted_key === undefined || jwe.iv === undefined || jwe.tag === undefined || jwe.protected === undefined) {
    throw new AttexError('broker.jwe', 'JWE encryption produced an incomplete object');
  }
  return { protected: jwe.protected, encrypted_key: jwe.encrypted_key, iv: jwe.iv, ciphertext: jwe.ciphertext, tag: jwe.tag };
}

/** Client side: decrypt a `Response` with the TEE private key; only our two algorithm pairs are accepted. */
export async function decryptFromBroker(response: unknown, privateKey: CryptoKey | KeyObject): Promise<Uint8Array> {
  if (typeof response !== 'object' || response === null) throw new AttexError('broker.jwe', 'resource response is not a JWE object');
  try {
    const { plaintext } = await flattenedDecrypt(response as Parameters<typeof flattenedDecrypt>[0], privateKey, {
      keyManagementAlgorithms: ['ECDH-ES+A256KW', 'RSA-OAEP-256'],
      contentEncryptionAlgorithms: [CONTENT_ENCRYPTION],
    });
    return plaintext;
  } catch {
    throw new AttexError('broker.jwe', 'resource response does not decrypt with the TEE key');
  }
}
