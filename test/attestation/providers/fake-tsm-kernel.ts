/**
 * A small emulation of the kernel's configfs-tsm report interface over a real directory tree:
 * mkdir populates the attribute files, a write to `inblob` bumps `generation` and regenerates
 * `outblob`/`auxblob` from the simulated TEE, rmdir removes the entry. It can inject what the
 * real kernel produces under stress: a concurrent writer (generation moves), EACCES for
 * non-root users, a stale outblob, and an unknown provider.
 */
import 'reflect-metadata';
import { X509Certificate } from '@peculiar/x509';
import { constants } from 'node:fs';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TsmFileSystem } from '../../../src/attestation/providers/index.ts';
import { buildCertTable, CERT_TABLE_GUIDS } from '../../../src/attestation/providers/index.ts';
import type { SimulatedTee } from '../../../src/attestation/sim/index.ts';

export interface FakeKernelOptions {
  provider?: string;
  /** Number of outblob reads during which another writer bumps `generation`. */
  races?: number;
  denyMkdir?: boolean;
  staleOutblob?: boolean;
  /** outblob reads wait until this resolves (firmware that does not answer). */
  outblobGate?: Promise<void>;
}

function errno(code: string, target: string): NodeJS.ErrnoException {
  const err = new Error(`${code}: ${target}`) as NodeJS.ErrnoException;
  err.code = code;
  return err;
}

export class FakeTsmKernel implements TsmFileSystem {
  inblobWrites = 0;
  private readonly sim: SimulatedTee;
  private readonly opts: FakeKernelOptions;
  private races: number;

  constructor(sim: SimulatedTee, opts: FakeKernelOptions = {}) {
    this.sim = sim;
    this.opts = opts;
    this.races = opts.races ?? 0;
  }

  async mkdir(dir: string): Promise<void> {
    if (this.opts.denyMkdir) throw errno('EACCES', dir);
    await mkdir(dir); // ENOENT when the report directory is missing, as on a kernel without TSM
    const files: Record<string, string> = {
      provider: `${this.opts.provider ?? 'sev_guest'}\n`, generation: '0\n', inblob: '', outblob: '', auxblob: '', privlevel: '0\n', privlevel_floor: '0\n',
    };
    for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, name), content);
  }

  async rmdir(dir: string): Promise<void> {
    await rm(dir, { recursive: true });
  }

  async readFile(file: string): Promise<Uint8Array> {
    if (path.basename(file) === 'outblob' && this.opts.outblobGate) await this.opts.outblobGate;
    if (path.basename(file) === 'outblob' && this.races > 0) {
      this.races--;
      await this.bumpGeneration(path.dirname(file)); // someone else wrote inblob meanwhile
    }
    return new Uint8Array(await readFile(file));
  }

  async writeFile(file: string, data: Uint8Array): Promise<void> {
    const handle = await open(file, constants.O_WRONLY | constants.O_TRUNC);
    await handle.write(data);
    await handle.close();
    const entry = path.dirname(file);
    if (path.basename(file) === 'privlevel') return this.bumpGeneration(entry);
    if (path.basename(file) !== 'inblob') return;
    this.inblobWrites++;
    await this.bumpGeneration(entry);
    const reportData = this.opts.staleOutblob ? new Uint8Array(64) : data;
    const provider = (await readFile(path.join(entry, 'provider'), 'utf8')).trim();
    if (provider === 'tdx_guest') {
      const pkg = await this.sim.tdxEvidence(reportData);
      await writeFile(path.join(entry, 'outblob'), Buffer.from(pkg.evidence, 'base64'));
      return;
    }
    const pkg = await this.sim.snpEvidence(reportData);
    const milan = this.sim.amdRoots.find((r) => r.product === 'Milan')!;
    const der = (c: X509Certificate) => new Uint8Array(c.rawData);
    const table = buildCertTable([
      { guid: CERT_TABLE_GUIDS.ark, cert: der(milan.ark) },
      { guid: CERT_TABLE_GUIDS.ask, cert: der(milan.ask!) },
      { guid: CERT_TABLE_GUIDS.vcek, cert: new Uint8Array(Buffer.from(pkg.certs![0]!, 'base64')) },
    ]);
    await writeFile(path.join(entry, 'outblob'), Buffer.from(pkg.evidence, 'base64'));
    await writeFile(path.join(entry, 'auxblob'), table);
  }

  private async bumpGeneration(entry: string): Promise<void> {
    const file = path.join(entry, 'generation');
    const current = Number((await readFile(file, 'utf8')).trim());
    await writeFile(file, `${current + 1}\n`);
  }
}
