/**
 * Inert implementations of the WASI 0.2 interfaces a JS engine links against (the "engine
 * baseline"). They grant nothing: no environment or arguments, no preopened directories, an
 * empty stdin, stdout/stderr counted and dropped, `exit` aborts the run. Clocks and random are
 * real because the engine needs them for Date, Math.random and hash seeds.
 */
import { randomBytes } from 'node:crypto';

export class GuestExit extends Error {
  constructor() {
    super('guest called wasi:cli/exit');
    this.name = 'GuestExit';
  }
}

class Pollable {
  ready(): boolean { return true; }
  block(): void {}
}
class IoError {
  toDebugString(): string { return 'stream closed'; }
}
const closed = { tag: 'err', val: { tag: 'closed' } } as const;

class InputStream {
  read(): unknown { return closed; }
  blockingRead(): unknown { return closed; }
  skip(): unknown { return closed; }
  blockingSkip(): unknown { return closed; }
  subscribe(): Pollable { return new Pollable(); }
}

/** Bytes the guest wrote to stdout/stderr; counted so a chatty guest is visible in usage. */
export interface StdioSink { stdioBytes: number }

function makeOutputStream(sink: () => StdioSink | undefined) {
  return class OutputStream {
    checkWrite(): bigint { return 65536n; }
    write(bytes: Uint8Array): void { const s = sink(); if (s) s.stdioBytes += bytes.length; }
    blockingWriteAndFlush(bytes: Uint8Array): void { this.write(bytes); }
    flush(): void {}
    blockingFlush(): void {}
    writeZeroes(n: bigint): void { const s = sink(); if (s) s.stdioBytes += Number(n); }
    blockingWriteZeroesAndFlush(n: bigint): void { this.writeZeroes(n); }
    splice(): unknown { return closed; }
    blockingSplice(): unknown { return closed; }
    subscribe(): Pollable { return new Pollable(); }
  };
}

class TerminalInput {}
class TerminalOutput {}
class Descriptor {}
class DirectoryEntryStream {}

function randomU64(): bigint {
  return randomBytes(8).readBigUInt64LE(0);
}

function boundedRandom(len: bigint): Uint8Array {
  if (len > 65536n) throw new RangeError('random request too large');
  return new Uint8Array(randomBytes(Number(len)));
}

/** Engine baseline keyed by unversioned interface name. */
export function engineStubs(sink: () => StdioSink | undefined): Record<string, Record<string, unknown>> {
  const OutputStream = makeOutputStream(sink);
  const wallNow = () => {
    const ms = Date.now();
    return { seconds: BigInt(Math.floor(ms / 1000)), nanoseconds: (ms % 1000) * 1_000_000 };
  };
  return {
    'wasi:cli/environment': { getEnvironment: () => [], getArguments: () => [], initialCwd: () => undefined },
    'wasi:cli/exit': { exit: () => { throw new GuestExit(); } },
    'wasi:cli/stdin': { getStdin: () => new InputStream() },
    'wasi:cli/stdout': { getStdout: () => new OutputStream() },
    'wasi:cli/stderr': { getStderr: () => new OutputStream() },
    'wasi:cli/terminal-input': { TerminalInput },
    'wasi:cli/terminal-output': { TerminalOutput },
    'wasi:cli/terminal-stdin': { getTerminalStdin: () => undefined },
    'wasi:cli/terminal-stdout': { getTerminalStdout: () => undefined },
    'wasi:cli/terminal-stderr': { getTerminalStderr: () => undefined },
    'wasi:io/error': { Error: IoError },
    'wasi:io/poll': { Pollable, poll: (list: unknown[]) => new Uint32Array(list.map((_, i) => i)) },
    'wasi:io/streams': { InputStream, OutputStream },
    'wasi:clocks/monotonic-clock': {
      now: () => process.hrtime.bigint(),
      resolution: () => 1n,
      subscribeDuration: () => new Pollable(),
      subscribeInstant: () => new Pollable(),
    },
    'wasi:clocks/wall-clock': { now: wallNow, resolution: () => ({ seconds: 0n, nanoseconds: 1_000_000 }) },
    'wasi:filesystem/preopens': { getDirectories: () => [] },
    'wasi:filesystem/types': { Descriptor, DirectoryEntryStream, filesystemErrorCode: () => undefined },
    'wasi:random/insecure-seed': { insecureSeed: () => [randomU64(), randomU64()] },
    'wasi:random/random': { getRandomBytes: boundedRandom, getRandomU64: randomU64 },
    'wasi:random/insecure': { getInsecureRandomBytes: boundedRandom, getInsecureRandomU64: randomU64 },
  };
}
