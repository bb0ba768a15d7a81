/**
 * Persistence of the simulated PKI. A state directory is generated once, completely, in a
 * temporary sibling directory (files and directories fsynced, keys 0600) and renamed into place,
 * so a crash or a concurrent opener never sees half a state: it sees none or all of it.
 */
import { createPrivateKey, type KeyObject, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { AttexError } from '../../errors/index.ts';
import { fromHex, toHex } from '../../util/index.ts';
import { AMD_PRODUCTS, type GeneratedMaterial, generateMaterial } from './pki.ts';

export const STATE_FORMAT = 'attex-sim-tee/1';
const STATE_SUBDIR = 'sim-tee-v1';
const KEY_ROLES = ['amd_ark', 'amd_ask', 'vcek_milan', 'vcek_genoa', 'vcek_turin', 'sgx_root_ca', 'pck_platform_ca', 'pck', 'tcb_signing', 'qe_attestation'];

export interface StoredMaterial extends GeneratedMaterial {
  readonly dir: string;
  readonly rootsDir: string;
}

async function writeDurable(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Every certificate of the state: role and path relative to the state directory. */
const CERT_FILES: ReadonlyArray<readonly [string, string]> = [
  ...AMD_PRODUCTS.flatMap((p) => {
    const l = p.toLowerCase();
    return [[`ark_${l}`, `roots/amd/ark_${l}.pem`], [`ask_${l}`, `roots/amd/ask_${l}.pem`], [`vcek_${l}`, `certs/vcek_${l}.pem`]] as const;
  }),
  ['sgx_root_ca', 'roots/intel/sgx_root_ca.pem'],
  ['pck_platform_ca', 'certs/pck_platform_ca.pem'],
  ['pck', 'certs/pck.pem'],
  ['tcb_signing', 'certs/tcb_signing.pem'],
];

const ROOTS_NOTICE =
  'These roots belong to the attex simulated TEE. They are NOT AMD or Intel roots.\n' +
  'Evidence chaining to them proves nothing about hardware; verifiers accept it only with --allow-simulated.\n';

async function writeState(tmp: string, m: GeneratedMaterial): Promise<void> {
  for (const sub of ['', 'keys', 'roots', 'roots/amd', 'roots/intel', 'certs']) await mkdir(path.join(tmp, sub), { recursive: true, mode: 0o700 });
  const state = {
    format: STATE_FORMAT,
    createdAt: m.createdAt,
    chipId: toHex(m.chipId),
    sgx: { ...m.sgx, ppid: toHex(m.sgx.ppid), cpuSvn: toHex(m.sgx.cpuSvn), pceId: toHex(m.sgx.pceId), fmspc: toHex(m.sgx.fmspc) },
  };
  await writeDurable(path.join(tmp, 'state.json'), `${JSON.stringify(state, null, 2)}\n`, 0o644);
  await writeDurable(path.join(tmp, 'roots/SIMULATED-ROOTS.txt'), ROOTS_NOTICE, 0o644);
  for (const [role, rel] of CERT_FILES) await writeDurable(path.join(tmp, rel), m.certs[role]!, 0o644);
  for (const role of KEY_ROLES) {
    const pem = m.keys[role]!.export({ type: 'pkcs8', format: 'pem' });
    await writeDurable(path.join(tmp, 'keys', `${role}.pem`), pem, 0o600);
  }
  for (const sub of ['keys', 'roots/amd', 'roots/intel', 'roots', 'certs', '']) await syncDir(path.join(tmp, sub));
}

function bad(dir: string, what: string, cause?: unknown): AttexError {
  return new AttexError('sim.state', `simulated TEE state in ${dir} is unusable: ${what}`, { cause });
}

async function readState(dir: string): Promise<StoredMaterial> {
  let state: Record<string, unknown>;
  try {
    state = JSON.parse(await readFile(path.join(dir, 'state.json'), 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw bad(dir, 'state.json is missing or not JSON', err);
  }
  if (state['format'] !== STATE_FORMAT) throw bad(dir, `unknown format ${JSON.stringify(state['format'])}`);
  const certs: Record<string, string> = {};
  const keys: Record<string, KeyObject> = {};
  try {
    for (const [role, rel] of CERT_FILES) certs[role] = await readFile(path.join(dir, rel), 'utf8');
    for (const role of KEY_ROLES) keys[role] = createPrivateKey(await readFile(path.join(dir, 'keys', `${role}.pem`), 'utf8'));
    const sgx = state['sgx'] as Record<string, unknown>;
    const chipId = fromHex(String(state['chipId']));
    if (chipId.length !== 64) throw new Error('chipId must be 64 bytes');
    return {
      dir,
      rootsDir: path.join(dir, 'roots'),
      createdAt: String(state['createdAt']),
      chipId,
      sgx: {
        ppid: fromHex(String(sgx['ppid'])),
        compSvns: (sgx['compSvns'] as unknown[]).map(Number),
        pceSvn: Number(sgx['pceSvn']),
        cpuSvn: fromHex(String(sgx['cpuSvn'])),
        pceId: fromHex(String(sgx['pceId'])),
        fmspc: fromHex(String(sgx['fmspc'])),
      },
      certs,
      keys,
    };
  } catch (err) {
    if (err instanceof AttexError) throw err;
    throw bad(dir, err instanceof Error ? err.message : String(err), err);
  }
}

/** Load the state under `stateDir`, generating it first if there is none. */
export async function loadOrCreateState(stateDir: string): Promise<StoredMaterial> {
  const root = path.resolve(stateDir);
  const dir = path.join(root, STATE_SUBDIR);
  try {
    return await readState(dir);
  } catch (err) {
    const missing = err instanceof AttexError && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
    if (!missing) throw err;
  }
  try {
    await mkdir(root, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new AttexError('sim.state', `cannot create simulated TEE state directory ${root}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  const material = await generateMaterial();
  const tmp = path.join(root, `.${STATE_SUBDIR}.tmp-${randomBytes(6).toString('hex')}`);
  try {
    await writeState(tmp, material);
    await rename(tmp, dir);
    await syncDir(root);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    const code = (err as NodeJS.ErrnoException).code;
    // Another opener won the race: its complete state is the one to use.
    if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw new AttexError('sim.state', `cannot create simulated TEE state in ${root}: ${String(err)}`, { cause: err });
  }
  return readState(dir);
}

/** Read an existing state without ever generating one (for verifiers given --sim-state). */
export async function loadExistingState(stateDir: string): Promise<StoredMaterial> {
  return readState(path.join(path.resolve(stateDir), STATE_SUBDIR));
}
