/**
 * `attex keygen`: an Ed25519 key pair for signing receipts, requests or a log. The private key
 * goes to a file (PKCS#8 PEM, mode 0600, written atomically) and is printed only with --stdout.
 */
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { AttexError } from '../../errors/index.ts';
import { formatVerifierKey } from '../../ledger/index.ts';
import { encodeBase64, rawEd25519PublicKey, sslibKeyId } from '../../receipts/index.ts';
import { writeNewFile } from '../../util/files.ts';
import { type Command, EXIT_OK, UsageError, parseCommandArgs, writeJson, writeLine } from '../command.ts';

const HELP = `usage: attex keygen [--out FILE] [--name NAME] [--stdout] [--json]

Generate an Ed25519 key pair. Prints the public key (base64 and hex), its securesystemslib
keyid, and with --name the C2SP signed-note verifier key (vkey) for that key name.

options:
  --out FILE     write the private key (PKCS#8 PEM) to FILE, mode 0600; refuses to overwrite
  --name NAME    key name for the vkey line (for a log key: the log's origin)
  --stdout       print the private key PEM to standard output (otherwise it is never printed)
  --json         print one JSON object

One of --out or --stdout is required. Exit codes: 0 ok, 2 usage or I/O error.`;

const OPTIONS = {
  out: { type: 'string' },
  name: { type: 'string' },
  stdout: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;


export const command: Command = {
  name: 'keygen',
  summary: 'generate an Ed25519 key pair for signing requests or logs',
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, OPTIONS);
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
    if (values.out === undefined && values.stdout !== true) throw new UsageError('nothing would keep the private key: pass --out FILE or --stdout');
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const raw = rawEd25519PublicKey(publicKey);
    let vkey: string | undefined;
    if (values.name !== undefined) {
      try {
        vkey = formatVerifierKey(values.name, raw);
      } catch (err) {
        throw new UsageError(`--name: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    let outFile: string | undefined;
    if (values.out !== undefined) {
      outFile = path.resolve(io.cwd, values.out);
      try {
        await writeNewFile(outFile, pem, 0o600);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new AttexError('keygen.io', code === 'EEXIST' ? `${values.out} already exists; not overwriting a key` : `cannot write ${values.out}: ${code ?? String(err)}`);
      }
    }
    const info = {
      publicKey: encodeBase64(raw),
      publicKeyHex: Buffer.from(raw).toString('hex'),
      keyId: sslibKeyId(raw),
      ...(vkey !== undefined ? { vkey } : {}),
      ...(outFile !== undefined ? { privateKeyFile: outFile } : {}),
      ...(values.stdout === true && values.json === true ? { privateKeyPem: pem } : {}),
    };
    if (values.json) {
      writeJson(io.stdout, info);
      return EXIT_OK;
    }
    if (values.stdout === true) io.stdout.write(pem);
    const out = values.stdout === true ? io.stderr : io.stdout; // keep stdout a clean PEM when it carries the key
    writeLine(out, `public key (base64):    ${info.publicKey}`);
    writeLine(out, `public key (hex):       ${info.publicKeyHex}`);
    writeLine(out, `securesystemslib keyid: ${info.keyId}`);
    if (vkey !== undefined) writeLine(out, `vkey:                   ${vkey}`);
    if (outFile !== undefined) writeLine(out, `private key:            ${outFile} (mode 0600)`);
    return EXIT_OK;
  },
};
