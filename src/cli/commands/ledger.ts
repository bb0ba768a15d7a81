/**
 * `attex ledger`: inspect and export the transparency log.
 *   info | checkpoint            read the published checkpoint (no key needed)
 *   proof <index> | export <out> open the ledger with its key (recovery and tamper checks run)
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import path from 'node:path';
import { AttexError } from '../../errors/index.ts';
import { readBoundedFile, toHex } from '../../util/index.ts';
import { Ledger, exportLedger, openNote, parseCheckpoint, rawPublicKey } from '../../ledger/index.ts';
import { type Command, type CommandIO, EXIT_OK, UsageError, parseCommandArgs, writeJson, writeLine } from '../command.ts';

const HELP = `usage: attex ledger <sub-command> [options]

sub-commands:
  info        --ledger DIR [--json]                 size, origin, root and signers of the published checkpoint
  checkpoint  --ledger DIR [--json]                 print the published checkpoint (signed note)
  proof <index> --ledger DIR --key FILE [--name NAME] [--size N] [--json]
                                                    print the c2sp.org/tlog-proof@v1 of an entry
  export <out> --ledger DIR --key FILE --executor-pub FILE [--name NAME] [--since-size N] [--json]
                                                    write the interop export layout (log/, receipts/, trust/)
                                                    (--out OUTDIR may replace the positional <out>)

options:
  --ledger DIR        the ledger directory
  --key FILE          the log's Ed25519 private key (PKCS#8 PEM); needed to open the ledger
  --name NAME         the log key's name (default: the checkpoint origin)
  --executor-pub FILE the executor's Ed25519 public key (PEM/SPKI, 64 hex digits or base64 of 32 bytes)
  --since-size N      also write log/consistency from the published checkpoint of size N
  --json              machine-readable output

Exit codes: 0 ok, 2 usage or I/O error (including ledger.corrupt / ledger.tampered / ledger.rollback).`;

const OPTIONS = {
  ledger: { type: 'string' },
  key: { type: 'string' },
  name: { type: 'string' },
  size: { type: 'string' },
  out: { type: 'string' },
  'executor-pub': { type: 'string' },
  'since-size': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function decimal(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(value)) throw new UsageError(`${what} must be a decimal number`);
  return Number(value);
}

async function readCheckpoint(dir: string): Promise<string> {
  try {
    return (await readBoundedFile(path.join(dir, 'checkpoint'), 1 << 20)).toString('utf8');
  } catch (err) {
    throw new AttexError('ledger.io', `cannot read ${path.join(dir, 'checkpoint')}: ${(err as Error).message}`);
  }
}

function checkpointSummary(note: string) {
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new AttexError('ledger.note-malformed', 'checkpoint file is not a signed note');
  const checkpoint = parseCheckpoint(note.slice(0, split + 1));
  const signers = note
    .slice(split + 2)
    .split('\n')
    .filter((l) => l.startsWith('\u2014 '))
    .map((l) => l.split(' ')[1]);
  return { origin: checkpoint.origin, size: checkpoint.size, rootHash: toHex(checkpoint.rootHash), signers };
}

async function openLedger(dir: string, keyFile: string | undefined, name: string | undefined): Promise<Ledger> {
  if (!keyFile) throw new UsageError('--key FILE is required to open the ledger');
  let privateKey;
  try {
    privateKey = createPrivateKey(await readBoundedFile(keyFile, 64 * 1024));
  } catch (err) {
    throw new AttexError('ledger.key-invalid', `cannot load the private key from ${keyFile}: ${(err as Error).message.split('\n')[0]}`);
  }
  const origin = checkpointSummary(await readCheckpoint(dir)).origin;
  // A ledger an executor or broker has open is refused (ledger.locked): open would treat its
  // write in progress as a torn tail.
  return Ledger.open(dir, { signer: { name: name ?? origin, privateKey }, origin, checkpointInterval: 0, lock: {} });
}

async function readExecutorKey(file: string): Promise<Uint8Array> {
  const text = (await readBoundedFile(file, 64 * 1024)).toString('utf8').trim();
  if (text.startsWith('-----BEGIN')) return rawPublicKey(createPublicKey(text));
  if (/^[0-9a-fA-F]{64}$/.test(text)) return new Uint8Array(Buffer.from(text, 'hex'));
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length === 32) return new Uint8Array(bytes);
  throw new AttexError('ledger.key-invalid', `${file}: not an Ed25519 public key (PEM, 64 hex digits or base64 of 32 bytes)`);
}

async function run(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, OPTIONS);
  const [sub, arg, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]}`);
  if (!sub) throw new UsageError('missing sub-command (info, checkpoint, proof, export)');
  if (!values.ledger) throw new UsageError('--ledger DIR is required');
  const dir = path.resolve(io.cwd, values.ledger);
  switch (sub) {
    case 'info': {
      const note = await readCheckpoint(dir);
      const summary = checkpointSummary(note);
      if (values.json) writeJson(io.stdout, summary);
      else writeLine(io.stdout, `origin ${summary.origin}\nsize   ${summary.size}\nroot   ${summary.rootHash}\nsigned ${summary.signers.join(', ')}`);
      return EXIT_OK;
    }
    case 'checkpoint': {
      const note = await readCheckpoint(dir);
      if (values.json) writeJson(io.stdout, { checkpoint: note, ...checkpointSummary(note) });
      else io.stdout.write(note);
      return EXIT_OK;
    }
    case 'proof': {
      const index = decimal(arg, 'index');
      if (index === undefined) throw new UsageError('proof needs an <index>');
      const ledger = await openLedger(dir, values.key === undefined ? undefined : path.resolve(io.cwd, values.key), values.name);
      try {
        const proof = await ledger.tlogProof(index, decimal(values.size, '--size'));
        // The note check is a guard against printing something the log key did not sign.
        openNote(proof.slice(proof.indexOf('\n\n') + 2), [ledger.verifierKey]);
        if (values.json) writeJson(io.stdout, { index, proof });
        else io.stdout.write(proof);
      } finally {
        await ledger.close();
      }
      return EXIT_OK;
    }
    case 'export': {
      const out = values.out ?? arg;
      if (!out) throw new UsageError('export needs an output directory (<out> or --out)');
      if (!values['executor-pub']) throw new UsageError('--executor-pub FILE is required');
      const executorPublicKey = await readExecutorKey(path.resolve(io.cwd, values['executor-pub']));
      const sinceSize = decimal(values['since-size'], '--since-size');
      const ledger = await openLedger(dir, values.key === undefined ? undefined : path.resolve(io.cwd, values.key), values.name);
      try {
        const result = await exportLedger(ledger, path.resolve(io.cwd, out), sinceSize === undefined ? { executorPublicKey } : { executorPublicKey, sinceSize });
        if (values.json) writeJson(io.stdout, result);
        else writeLine(io.stdout, `exported ${result.size} entries to ${out}${result.consistencyFrom ? ` (consistency from ${result.consistencyFrom})` : ''}`);
      } finally {
        await ledger.close();
      }
      return EXIT_OK;
    }
    default:
      throw new UsageError(`unknown sub-command ${sub}`);
  }
}

export const command: Command = {
  name: 'ledger',
  summary: 'inspect and export the transparency log',
  help: HELP,
  run,
};
