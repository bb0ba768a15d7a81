/**
 * Byte transports for raw TPM 2.0 commands: the kernel resource manager `/dev/tpmrm0`, or a TCP
 * socket speaking the same raw command stream (swtpm in socket mode). One command in flight at a
 * time; every exchange has a deadline so a wedged TPM cannot hang the caller.
 */
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import net from 'node:net';
import { AttexError } from '../../errors/index.ts';
import { providerIoError } from './errors.ts';

export interface TpmTransport {
  transmit(command: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

const MAX_RESPONSE = 8192;
const HEADER = 10;

function responseSize(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(2, false);
}

function timeoutError(target: string, ms: number): AttexError {
  return new AttexError('provider.tpm-timeout', `TPM at ${target} did not answer within ${ms} ms`);
}

/** `/dev/tpmrm0` (or another character device): write a command, read one response. */
export async function openDeviceTransport(device: string, timeoutMs = 30_000): Promise<TpmTransport> {
  let handle: FileHandle;
  try {
    handle = await open(device, constants.O_RDWR);
  } catch (err) {
    throw providerIoError(err, 'open', device);
  }
  // After a timeout the device is wedged: closing it waits for the stuck read or write, so the
  // handle is let go instead of awaited, and the transport refuses further commands.
  let wedged = false;
  return {
    async transmit(command) {
      if (wedged) throw timeoutError(device, timeoutMs);
      let timer: NodeJS.Timeout | undefined;
      const exchange = (async () => {
        await handle.write(command, 0, command.length, null);
        const buf = new Uint8Array(MAX_RESPONSE);
        const { bytesRead } = await handle.read(buf, 0, buf.length, null);
        return buf.slice(0, bytesRead);
      })();
      exchange.catch(() => undefined); // settles after the deadline when the device is wedged
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          wedged = true;
          reject(timeoutError(device, timeoutMs));
        }, timeoutMs);
      });
      try {
        return await Promise.race([exchange, deadline]);
      } catch (err) {
        if (err instanceof AttexError) throw err;
        throw providerIoError(err, 'talk to', device);
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      const closing = handle.close();
      if (wedged) closing.catch(() => undefined);
      else await closing;
    },
  };
}

/** A raw TPM command stream over TCP (swtpm `socket --server type=tcp`). */
export async function openTcpTransport(host: string, port: number, timeoutMs = 30_000): Promise<TpmTransport> {
  const target = `${host}:${port}`;
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host, port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(timeoutError(target, timeoutMs));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(new AttexError('provider.unavailable', `cannot connect to TPM at ${target}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, { cause: err }));
    });
  });
  let pending: { chunks: Buffer[]; length: number; resolve: (b: Uint8Array) => void; reject: (e: Error) => void } | null = null;
  let failure: Error | null = null;
  const fail = (err: Error) => {
    failure = err;
    pending?.reject(err);
    pending = null;
  };
  socket.on('data', (chunk: Buffer) => {
    if (!pending) return fail(new AttexError('provider.tpm', `unsolicited bytes from TPM at ${target}`));
    pending.chunks.push(chunk);
    pending.length += chunk.length;
    const all = Buffer.concat(pending.chunks);
    if (all.length < HEADER) return;
    const size = responseSize(all);
    if (size < HEADER || size > MAX_RESPONSE) return fail(new AttexError('provider.tpm', `TPM at ${target} sent a response of impossible size ${size}`));
    if (all.length >= size) {
      const done = pending;
      pending = null;
      done.resolve(new Uint8Array(all.subarray(0, size)));
    }
  });
  socket.on('error', (err) => fail(new AttexError('provider.io', `TPM connection to ${target} failed: ${err.message}`, { cause: err })));
  socket.on('close', () => fail(new AttexError('provider.io', `TPM at ${target} closed the connection`)));
  return {
    async transmit(command) {
      if (failure) throw failure;
      if (pending) throw new AttexError('provider.tpm', 'a TPM command is already in flight');
      let timer: NodeJS.Timeout | undefined;
      try {
        return await new Promise<Uint8Array>((resolve, reject) => {
          pending = { chunks: [], length: 0, resolve, reject };
          timer = setTimeout(() => {
            pending = null;
            reject(timeoutError(target, timeoutMs));
          }, timeoutMs);
          socket.write(command);
        });
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      socket.removeAllListeners('close');
      socket.destroy();
    },
  };
}

/** "tcp:HOST:PORT" opens a socket; anything else is a device path. */
export async function openTpmTransport(target: string, timeoutMs?: number): Promise<TpmTransport> {
  const tcp = /^tcp:(.+):(\d{1,5})$/.exec(target);
  if (tcp) return openTcpTransport(tcp[1]!, Number(tcp[2]), timeoutMs);
  return openDeviceTransport(target, timeoutMs);
}
