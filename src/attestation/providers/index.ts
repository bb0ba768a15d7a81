/**
 * Evidence providers: where the executor's evidence comes from. One interface, three sources:
 * Linux configfs-tsm (SEV-SNP and TDX guests), the Azure vTPM (HCL report), and the simulated
 * TEE. `detectProvider` picks the first that is present and, when none is, says what is missing
 * and how to fix it.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { AttexError } from '../../errors/index.ts';
import { azureVtpmProvider, DEFAULT_TPM_DEVICE, HCL_REPORT_INDEX } from './azure-vtpm.ts';
import { configfsTsmProvider, DEFAULT_CONFIGFS_ROOT } from './configfs-tsm.ts';
import { errnoOf } from './errors.ts';
import type { EvidenceProvider } from './provider.ts';
import { simProvider } from './sim.ts';
import { nvReadPublic } from './tpm-commands.ts';
import { openTpmTransport } from './tpm-transport.ts';

export type { EvidenceProvider } from './provider.ts';
export { type ConfigfsTsmOptions, configfsTsmProvider, DEFAULT_CONFIGFS_ROOT, nodeTsmFileSystem, type TsmFileSystem } from './configfs-tsm.ts';
export { type AzureVtpmOptions, azureVtpmProvider, DEFAULT_TPM_DEVICE, fetchAzureVcek, HCL_REPORT_INDEX, hclUserData, USER_DATA_INDEX } from './azure-vtpm.ts';
export { type SimProviderOptions, simProvider } from './sim.ts';
export { buildCertTable, CERT_TABLE_GUIDS, type CertTableEntry, parseCertTable } from './snp-cert-table.ts';
export { getTpmProperty, nvDefineSpace, nvRead, nvReadPublic, nvWrite, PT_NV_BUFFER_MAX, TpmResponseError } from './tpm-commands.ts';
export { openTpmTransport, type TpmTransport } from './tpm-transport.ts';

export type ProviderName = 'configfs-tsm' | 'azure-vtpm' | 'sim';
export const PROVIDER_NAMES: readonly ProviderName[] = ['configfs-tsm', 'azure-vtpm', 'sim'];

export interface DetectOptions {
  readonly configfsRoot?: string;
  /** `/dev/tpmrm0` (default) or `tcp:HOST:PORT`. */
  readonly tpmDevice?: string;
  /** Enables the simulated TEE (never chosen automatically without it). */
  readonly simStateDir?: string;
  readonly prefer?: ProviderName | 'auto';
  /** Passed to the Azure provider (tests supply the VCEK; production fetches it from IMDS). */
  readonly azureVcek?: Uint8Array;
  readonly simKind?: 'snp' | 'tdx';
}

async function configfsPresent(root: string): Promise<string | null> {
  const dir = path.join(root, 'tsm', 'report');
  try {
    return (await stat(dir)).isDirectory() ? null : `${dir} is not a directory`;
  } catch (err) {
    return `${dir} is missing (${errnoOf(err) ?? 'error'}): needs Linux 6.7+ with CONFIG_TSM_REPORTS in an SEV-SNP/TDX guest and configfs mounted (mount -t configfs none /sys/kernel/config)`;
  }
}

async function azureVtpmPresent(device: string): Promise<string | null> {
  let transport;
  try {
    transport = await openTpmTransport(device, 5_000);
  } catch (err) {
    return `no TPM at ${device} (${err instanceof AttexError ? err.message : String(err)}): Azure confidential VMs expose their vTPM there`;
  }
  try {
    await nvReadPublic(transport, HCL_REPORT_INDEX);
    return null;
  } catch {
    return `the TPM at ${device} has no NV index 0x01400001: it is not an Azure confidential VM vTPM`;
  } finally {
    await transport.close();
  }
}

function build(name: ProviderName, opts: DetectOptions): EvidenceProvider {
  if (name === 'configfs-tsm') return configfsTsmProvider({ root: opts.configfsRoot ?? DEFAULT_CONFIGFS_ROOT });
  if (name === 'azure-vtpm') return azureVtpmProvider({ device: opts.tpmDevice ?? DEFAULT_TPM_DEVICE, ...(opts.azureVcek && { vcek: opts.azureVcek }) });
  if (!opts.simStateDir) throw new AttexError('provider.unavailable', 'the simulated TEE needs a state directory (--sim-state DIR)');
  return simProvider({ stateDir: opts.simStateDir, ...(opts.simKind && { kind: opts.simKind }) });
}

/**
 * Pick an evidence provider. With `prefer` naming one, it is checked and returned (or the reason
 * it is unusable thrown). With 'auto': configfs-tsm, then the Azure vTPM, then the simulated TEE
 * if a state directory was given. Throws AttexError `provider.none` listing what was missing.
 */
export async function detectProvider(opts: DetectOptions = {}): Promise<EvidenceProvider> {
  const prefer = opts.prefer ?? 'auto';
  if (prefer !== 'auto' && !PROVIDER_NAMES.includes(prefer)) {
    throw new AttexError('provider.unknown', `unknown provider ${JSON.stringify(prefer)}; expected auto, ${PROVIDER_NAMES.join(', ')}`);
  }
  const checks: Record<ProviderName, () => Promise<string | null>> = {
    'configfs-tsm': () => configfsPresent(opts.configfsRoot ?? DEFAULT_CONFIGFS_ROOT),
    'azure-vtpm': () => azureVtpmPresent(opts.tpmDevice ?? DEFAULT_TPM_DEVICE),
    sim: async () => (opts.simStateDir ? null : 'simulated TEE not enabled: pass --provider sim --sim-state DIR (development only)'),
  };
  const order = prefer === 'auto' ? PROVIDER_NAMES : [prefer];
  const missing: string[] = [];
  for (const name of order) {
    const problem = await checks[name]();
    if (problem === null) return build(name, opts);
    missing.push(`${name}: ${problem}`);
  }
  throw new AttexError('provider.none', `no usable evidence provider:\n  ${missing.join('\n  ')}`, { details: { missing } });
}
