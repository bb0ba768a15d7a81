/**
 * Loading the trust store: the vendor roots shipped in `attestation/roots` (or another directory
 * the operator names), plus any extra root sets passed in (the simulated TEE's). Nothing is
 * fetched: a verifier trusts exactly what this returns.
 */
import 'reflect-metadata';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { X509Certificate } from '@peculiar/x509';
import { AttexError } from '../../errors/index.ts';
import { readBoundedFile } from '../../util/index.ts';
import type { AmdProduct, AmdRootSet, IntelRoot, TrustStore } from '../types.ts';

/** The repository's `attestation/roots` directory. */
export const DEFAULT_ROOTS_DIR = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../attestation/roots');

const PRODUCTS: readonly AmdProduct[] = ['Milan', 'Genoa', 'Turin'];
const ROOT_FILE_RE = /^(ark|ask|asvk)_(milan|genoa|turin)\.pem$|^sgx_root_ca\.pem$/;
const MAX_PEM_BYTES = 64 * 1024;
const PEM_BLOCK_RE = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END \1-----/g;

export interface LoadTrustStoreOptions {
  /** Directory holding ark_<product>.pem, ask_<product>.pem, asvk_<product>.pem, sgx_root_ca.pem. */
  rootsDir?: string;
  extraAmd?: readonly AmdRootSet[];
  extraIntel?: readonly IntelRoot[];
  allowSimulated: boolean;
}

function rootError(file: string, message: string, cause?: unknown): AttexError {
  return new AttexError('trust.root-malformed', `trust root ${file}: ${message}`, { details: { file }, ...(cause !== undefined && { cause }) });
}

/** Exactly one PEM CERTIFICATE block and nothing else but whitespace. */
export function parseSinglePemCertificate(text: string, label: string): X509Certificate {
  const blocks = [...text.matchAll(PEM_BLOCK_RE)];
  const rest = text.replace(PEM_BLOCK_RE, '').trim();
  if (blocks.length !== 1 || rest !== '') throw rootError(label, 'expected exactly one PEM certificate and nothing else');
  const [, type, body] = blocks[0]!;
  if (type !== 'CERTIFICATE') throw rootError(label, `expected a CERTIFICATE block, found ${type}`);
  const der = Buffer.from(body!.replace(/[\r\n]/g, ''), 'base64');
  try {
    return new X509Certificate(new Uint8Array(der));
  } catch (err) {
    throw rootError(label, 'not a valid X.509 certificate', err);
  }
}

async function readCert(dir: string, file: string): Promise<X509Certificate> {
  let bytes: Buffer;
  try {
    // A regular file within the cap only: a FIFO planted here would block the load forever.
    bytes = await readBoundedFile(path.join(dir, file), MAX_PEM_BYTES);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EFBIG') throw rootError(file, `larger than ${MAX_PEM_BYTES} bytes`);
    throw new AttexError('trust.roots-unreadable', `cannot read trust root ${file}: ${code === 'ENOTREG' ? 'not a regular file' : (code ?? String(err))}`, { cause: err });
  }
  return parseSinglePemCertificate(bytes.toString('latin1'), file);
}

async function checkSignedBy(cert: X509Certificate, issuer: X509Certificate, file: string, issuerFile: string): Promise<void> {
  let ok = false;
  try {
    ok = await cert.verify({ publicKey: issuer, signatureOnly: true });
  } catch {
    ok = false;
  }
  if (!ok) throw rootError(file, `not signed by ${issuerFile}`);
}

/** Read the roots of one directory. Files with other names are ignored; a named file must be valid. */
export async function loadRootsDir(dir: string): Promise<{ amd: AmdRootSet[]; intel: IntelRoot[] }> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => ROOT_FILE_RE.test(n));
  } catch (err) {
    throw new AttexError('trust.roots-unreadable', `cannot read roots directory: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  const present = new Set(names);
  const amd: AmdRootSet[] = [];
  for (const product of PRODUCTS) {
    const p = product.toLowerCase();
    const [arkFile, askFile, asvkFile] = [`ark_${p}.pem`, `ask_${p}.pem`, `asvk_${p}.pem`];
    if (!present.has(arkFile)) {
      if (present.has(askFile) || present.has(asvkFile)) throw rootError(askFile, `${arkFile} is missing`);
      continue;
    }
    const ark = await readCert(dir, arkFile);
    await checkSignedBy(ark, ark, arkFile, 'itself');
    const set: { product: AmdProduct; ark: X509Certificate; ask?: X509Certificate; asvk?: X509Certificate; simulated: boolean } = {
      product,
      ark,
      simulated: false,
    };
    if (present.has(askFile)) {
      set.ask = await readCert(dir, askFile);
      await checkSignedBy(set.ask, ark, askFile, arkFile);
    }
    if (present.has(asvkFile)) {
      set.asvk = await readCert(dir, asvkFile);
      await checkSignedBy(set.asvk, ark, asvkFile, arkFile);
    }
    amd.push(set);
  }
  const intel: IntelRoot[] = [];
  if (present.has('sgx_root_ca.pem')) {
    const root = await readCert(dir, 'sgx_root_ca.pem');
    await checkSignedBy(root, root, 'sgx_root_ca.pem', 'itself');
    intel.push({ root, simulated: false });
  }
  return { amd, intel };
}

/**
 * The trust store for verification: the roots directory (default: the repository's
 * `attestation/roots`) merged with `extraAmd` / `extraIntel`. Throws AttexError
 * `trust.roots-unreadable` or `trust.root-malformed`; an empty result is `trust.no-roots`.
 */
export async function loadTrustStore(opts: LoadTrustStoreOptions): Promise<TrustStore> {
  const fromDir = await loadRootsDir(opts.rootsDir ?? DEFAULT_ROOTS_DIR);
  const amd = [...fromDir.amd, ...(opts.extraAmd ?? [])];
  const intel = [...fromDir.intel, ...(opts.extraIntel ?? [])];
  if (amd.length === 0 && intel.length === 0) throw new AttexError('trust.no-roots', 'the trust store is empty: no roots found');
  return { amd, intel, allowSimulated: opts.allowSimulated };
}
