/** Reading our label's member of Signature-Input and Signature, and checking it against the policy. */
import { type Dictionary, isInnerList, parseDictionary, serializeDictionary } from 'structured-headers';
import { AttexError } from '../errors/index.ts';
import { COVERED_COMPONENTS, SIGNATURE_LABEL } from './common.ts';

export interface OurSignature {
  readonly keyId: string;
  readonly created: number;
  readonly expires: number | undefined;
  readonly nonce: string;
  /** Covered components, in the signed order: lowercase names without parameters. */
  readonly components: readonly string[];
  readonly signatureBytes: Buffer;
  /** `attex=(...);params`, re-serialized from the parsed member. */
  readonly signatureInput: string;
  /** `attex=:base64:`, re-serialized from the parsed member. */
  readonly signature: string;
}

function malformed(detail: string): AttexError {
  return new AttexError('auth.malformed-signature', detail);
}

function dictionary(value: string, name: string): Dictionary {
  try {
    return parseDictionary(value);
  } catch {
    throw malformed(`${name} is not a structured-field dictionary (RFC 8941)`);
  }
}

/** Our label's members of both headers, checked against the policy (coverage and parameters). */
export function readSignature(signatureInputHeader: string, signatureHeader: string): OurSignature {
  const input = dictionary(signatureInputHeader, 'Signature-Input').get(SIGNATURE_LABEL);
  const signature = dictionary(signatureHeader, 'Signature').get(SIGNATURE_LABEL);
  if (input === undefined || signature === undefined) throw malformed(`Signature-Input and Signature must both carry a '${SIGNATURE_LABEL}' signature`);
  if (!isInnerList(input)) throw malformed(`Signature-Input '${SIGNATURE_LABEL}' must be an inner list of covered components`);
  if (isInnerList(signature) || !(signature[0] instanceof ArrayBuffer)) throw malformed(`Signature '${SIGNATURE_LABEL}' must be a byte sequence`);
  const [components, params] = input;
  // A component counts only as a plain string: `"content-digest";sf` is another component.
  const covered = new Set(components.filter(([value, p]) => typeof value === 'string' && p.size === 0).map(([value]) => value));
  for (const c of COVERED_COMPONENTS) {
    if (!covered.has(c)) throw new AttexError('auth.incomplete-coverage', `signature must cover ${COVERED_COMPONENTS.join(', ')}; '${c}' is missing`);
  }
  const alg = params.get('alg');
  const created = params.get('created');
  const keyId = params.get('keyid');
  const nonce = params.get('nonce');
  if (alg !== 'ed25519') throw malformed('signature parameter alg must be the string "ed25519"');
  if (typeof created !== 'number' || !Number.isSafeInteger(created)) throw malformed('signature parameter created must be an integer (seconds since the epoch)');
  if (typeof keyId !== 'string' || keyId.length === 0) throw malformed('signature parameter keyid is required (a string)');
  if (typeof nonce !== 'string' || nonce.length < 16 || nonce.length > 128) throw malformed('signature parameter nonce is required (a string of 16-128 characters)');
  const expires = params.get('expires');
  if (expires !== undefined && (typeof expires !== 'number' || !Number.isSafeInteger(expires))) throw malformed('signature parameter expires must be an integer (seconds since the epoch)');
  for (const [name, value] of params) {
    if (!SIGNATURE_PARAMETERS.has(name)) throw malformed(`signature parameter ${name.slice(0, 32)} is not one RFC 9421 defines (created, expires, keyid, alg, nonce, tag)`);
    if (name === 'tag' && typeof value !== 'string') throw malformed('signature parameter tag must be a string');
  }
  const names: string[] = [];
  for (const [value, p] of components) {
    if (typeof value !== 'string' || p.size > 0 || !COMPONENT_NAME.test(value) || !DERIVABLE.has(value) && value.startsWith('@')) {
      throw new AttexError('auth.unsupported-component', `covered component ${typeof value === 'string' ? JSON.stringify(value) : 'of another type'}${p.size > 0 ? ' with parameters' : ''} is not supported: cover ${[...DERIVABLE].join(', ')} and lowercase header fields, without parameters`);
    }
    if (names.includes(value)) throw malformed(`covered component "${value}" appears twice`);
    names.push(value);
  }
  const signatureInput = serializeDictionary(new Map([[SIGNATURE_LABEL, input]]));
  // The base is built from this re-serialization, so it must be what was sent: a member written
  // otherwise (`created=1.0`, a date or display string the serializer does not reproduce) would
  // let different headers share one signature, and the receipt would record neither.
  if (!memberAsSent(signatureInputHeader, signatureInput)) throw malformed(`Signature-Input '${SIGNATURE_LABEL}' must be sent in its canonical RFC 8941 serialization`);
  return {
    keyId,
    created,
    expires,
    nonce,
    components: names,
    signatureBytes: Buffer.from(signature[0]),
    signatureInput,
    signature: serializeDictionary(new Map([[SIGNATURE_LABEL, signature]])),
  };
}

/** Whether `member` is one of the dictionary's members exactly as sent (between commas). */
function memberAsSent(header: string, member: string): boolean {
  for (let at = header.indexOf(member); at !== -1; at = header.indexOf(member, at + 1)) {
    const before = header.slice(0, at).replace(/[ \t]+$/, '');
    const after = header.slice(at + member.length).replace(/^[ \t]+/, '');
    if ((before === '' || before.endsWith(',')) && (after === '' || after.startsWith(','))) return true;
  }
  return false;
}

/** The signature parameters RFC 9421 §2.3 defines; no other has a meaning here. */
const SIGNATURE_PARAMETERS: ReadonlySet<string> = new Set(['created', 'expires', 'keyid', 'alg', 'nonce', 'tag']);

/** A header field name (RFC 9110 token), lowercase, or a derived component name. */
const COMPONENT_NAME = /^@?[a-z0-9!#$%&'*+.^_`|~-]+$/;

/**
 * Derived components the executor can compute as the caller saw them. `@authority`,
 * `@scheme` and `@target-uri` are not among them: behind a proxy or load balancer the executor
 * does not see the caller's authority and scheme, so such a signature could never verify.
 * signatureBase (verify.ts) derives exactly these.
 */
const DERIVABLE: ReadonlySet<string> = new Set(['@method', '@path', '@query', '@request-target']);
