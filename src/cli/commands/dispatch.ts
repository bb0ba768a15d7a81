/**
 * `attex dispatch <action> --input JSON|@file`: send one action request, signed per RFC 9421
 * with a local Ed25519 key, print the output and receipt, and optionally save the receipt
 * bundle for `attex verify`.
 */
import { createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../../util/files.ts';
import path from 'node:path';
import { request } from 'undici';
import { AttexError } from '../../errors/index.ts';
import { signRequest } from '../../httpsig/index.ts';
import { type Command, type CommandIO, EXIT_NEGATIVE, EXIT_OK, EXIT_USAGE, UsageError, parseCommandArgs, writeJson, writeLine } from '../command.ts';

export const DEV_CALLER_KEY = '.attex/dev/caller-key.pem';
export const DEV_CALLER_ID = 'dev';
export const DEFAULT_EXECUTOR_URL = 'http://127.0.0.1:8787';

const HELP = `usage: attex dispatch <action> --input JSON|@FILE [--url URL] [--key FILE] [--key-id ID]
                      [--idempotency-key K] [--save FILE] [--json]

Send a signed action request to an executor (HTTP Message Signatures, RFC 9421, Ed25519 over
@method, @path, @query and content-digest, with created, keyid and a fresh nonce).

arguments:
  <action>               the action (component) name, e.g. transform

options:
  --input JSON|@FILE     the action input: JSON text, or @ and a file whose bytes are sent as-is
  --url URL              executor base URL (default $ATTEX_URL or ${DEFAULT_EXECUTOR_URL})
  --key FILE             caller's Ed25519 private key, PKCS#8 PEM (default $ATTEX_KEY or ${DEV_CALLER_KEY})
  --key-id ID            key id the executor knows the key by (default $ATTEX_KEY_ID or ${DEV_CALLER_ID})
  --idempotency-key K    retry-safe key: the same key and body return the first result, never run twice
  --save FILE            write the receipt bundle (from /v1/receipts/<id>) to FILE for \`attex verify\`
  --timeout SECONDS      give up after this long (default 60)
  --json                 print the executor's full JSON response

Exit codes: 0 action succeeded, 1 action failed (a receipt records the failure),
2 usage error, request refused (4xx/5xx problem) or network error.`;

const OPTIONS = {
  input: { type: 'string' },
  url: { type: 'string' },
  key: { type: 'string' },
  'key-id': { type: 'string' },
  'idempotency-key': { type: 'string' },
  save: { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const MAX_RESPONSE_BYTES = 128 << 20;

async function inputBytes(value: string, io: CommandIO): Promise<Uint8Array> {
  let bytes: Uint8Array;
  if (value.startsWith('@')) {
    try {
      bytes = new Uint8Array(await readFile(path.resolve(io.cwd, value.slice(1))));
    } catch (err) {
      throw new UsageError(`cannot read input file ${value.slice(1)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  } else {
    bytes = new TextEncoder().encode(value);
  }
  try {
    JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new UsageError('--input is not valid UTF-8 JSON');
  }
  return bytes;
}

async function loadKey(file: string) {
  let pem: Buffer;
  try {
    pem = await readFile(file);
  } catch (err) {
    throw new UsageError(`cannot read the caller key ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}${file.endsWith(DEV_CALLER_KEY) ? ' (run `npm start` first to create the dev key)' : ''}`);
  }
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== 'ed25519') throw new Error('not Ed25519');
    return key;
  } catch {
    throw new UsageError(`${file} is not an Ed25519 private key (PKCS#8 PEM)`);
  }
}

async function readBody(body: AsyncIterable<Buffer | Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const c of body) {
    total += c.length;
    if (total > MAX_RESPONSE_BYTES) throw new AttexError('dispatch.response-too-large', `response larger than ${MAX_RESPONSE_BYTES} bytes`);
    chunks.push(Buffer.from(c));
  }
  return Buffer.concat(chunks);
}

function parseJson(bytes: Buffer): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(bytes.toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}


async function run(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, OPTIONS);
  const [action, ...extra] = positionals;
  if (!action) throw new UsageError('missing <action>');
  if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]}`);
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(action)) throw new UsageError('action names are lowercase letters, digits and -');
  if (values.input === undefined) throw new UsageError('--input JSON|@FILE is required');
  const timeoutSeconds = values.timeout === undefined ? 60 : Number(values.timeout);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0 || timeoutSeconds > 3600) throw new UsageError('--timeout must be 1..3600 seconds');
  const base = values.url ?? io.env['ATTEX_URL'] ?? DEFAULT_EXECUTOR_URL;
  let url: URL;
  try {
    url = new URL(`/v1/actions/${action}`, base);
  } catch {
    throw new UsageError(`--url ${base} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError('--url must be http(s)');
  const body = await inputBytes(values.input, io);
  const keyFile = path.resolve(io.cwd, values.key ?? io.env['ATTEX_KEY'] ?? DEV_CALLER_KEY);
  const keyId = values['key-id'] ?? io.env['ATTEX_KEY_ID'] ?? DEV_CALLER_ID;
  const privateKey = await loadKey(keyFile);
  const idempotencyKey = values['idempotency-key'];
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;
  const signed = await signRequest({ method: 'POST', url: url.pathname + url.search, headers, body }, { keyId, privateKey });
  const timeoutMs = timeoutSeconds * 1000;

  let status: number;
  let response: Record<string, unknown> | undefined;
  let retryAfter: string | undefined;
  try {
    const res = await request(url, { method: 'POST', headers: signed, body, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    status = res.statusCode;
    const ra = res.headers['retry-after'];
    retryAfter = Array.isArray(ra) ? ra[0] : ra;
    response = parseJson(await readBody(res.body));
  } catch (err) {
    if (err instanceof AttexError) throw err;
    throw new AttexError('dispatch.network', `cannot reach ${url.origin}: ${(err as Error).message}`);
  }
  const isResult = response !== undefined && typeof response['invocationId'] === 'string' && typeof response['receipt'] === 'string';
  if (!isResult) {
    const p = response ?? {};
    if (values.json) writeJson(io.stdout, { status, problem: p });
    writeLine(io.stderr, `attex dispatch: ${status} ${String(p['code'] ?? 'error')}: ${String(p['detail'] ?? 'the executor refused the request')}${retryAfter ? ` (retry after ${retryAfter}s)` : ''}`);
    return EXIT_USAGE;
  }
  const result = response!;
  const invocationId = result['invocationId'] as string;
  let saved: string | undefined;
  if (values.save !== undefined) {
    saved = path.resolve(io.cwd, values.save);
    const bundleUrl = new URL(`/v1/receipts/${encodeURIComponent(invocationId)}`, base);
    try {
      const res = await request(bundleUrl, { method: 'GET', headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
      const bytes = await readBody(res.body);
      if (res.statusCode !== 200 || parseJson(bytes) === undefined) throw new AttexError('dispatch.receipt', `GET ${bundleUrl.pathname} answered ${res.statusCode}`);
      await writeFileAtomic(saved, `${bytes.toString('utf8')}\n`);
    } catch (err) {
      if (err instanceof AttexError) throw err;
      throw new AttexError('dispatch.network', `cannot fetch the receipt bundle: ${(err as Error).message}`);
    }
  }
  const ok = result['outcome'] === 'ok';
  if (values.json) {
    writeJson(io.stdout, { status, ...result, ...(saved ? { saved } : {}) });
  } else {
    if (ok) writeJson(io.stdout, result['output']);
    else {
      const e = (result['error'] ?? {}) as { code?: string; message?: string };
      writeLine(io.stderr, `action failed: ${e.code ?? 'error'}: ${e.message ?? ''}`);
    }
    writeLine(io.stderr, `invocation ${invocationId}: receipt at log index ${String(result['logIndex'])}${result['replayed'] === true ? ' (replayed: the earlier result of this idempotency key)' : ''}`);
    if (saved) writeLine(io.stderr, `receipt bundle saved to ${values.save}; verify it with: attex verify ${values.save} --trust <trust.json>`);
  }
  return ok ? EXIT_OK : EXIT_NEGATIVE;
}

export const command: Command = {
  name: 'dispatch',
  summary: 'send a signed action request to an executor',
  help: HELP,
  run,
};
