/**
 * Linear memories for fresh instances. Modules whose memory was turned into an import
 * (wasm-memory.ts) get one from here: a memory of exactly the declared initial size, all zero,
 * so the new instance's data segments land in it just as in a memory V8 had allocated itself.
 *
 * Why: a V8-owned memory costs a multi-GiB address reservation, page faults on every touched
 * page and an unmap per instance, serialised on the process's memory map; reusing memories made
 * the pool ~1.4x faster (docs/sandbox.md). A released memory is reused only if the guest never grew it (a memory
 * cannot shrink), and it is zeroed in full before it is handed out again, so no byte of one
 * action is visible to the next.
 */
import { MEMORY_IMPORT, type MemoryType, WASM_PAGE } from './wasm-memory.ts';

interface Lease {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly type: MemoryType;
}

export class MemoryLeases {
  private readonly free = new Map<WebAssembly.Module, WebAssembly.Memory[]>();
  private readonly types: ReadonlyMap<WebAssembly.Module, MemoryType>;
  private readonly reuse: boolean;
  private readonly keep: number;

  /**
   * @param types memory type of each module that imports its memory
   * @param reuse false: every lease is a new memory (the baseline the benchmark compares with)
   * @param keep  released memories kept per module
   */
  constructor(types: ReadonlyMap<WebAssembly.Module, MemoryType>, reuse = true, keep = 2) {
    this.types = types;
    this.reuse = reuse;
    this.keep = keep;
  }

  /** `imports` plus this module's memory when it imports one; records the lease in `leases`. */
  importsFor(module: WebAssembly.Module, imports: WebAssembly.Imports, leases: Lease[]): WebAssembly.Imports {
    const type = this.types.get(module);
    if (!type) return imports;
    const memory = this.free.get(module)?.pop() ?? new WebAssembly.Memory({ initial: type.initial, maximum: type.maximum });
    leases.push({ module, memory, type });
    return { ...imports, [MEMORY_IMPORT.module]: { [MEMORY_IMPORT.name]: memory } };
  }

  /** Take back the memories of an instance that will never run again. */
  release(leases: Lease[]): void {
    for (const { module, memory, type } of leases.splice(0)) {
      if (!this.reuse || memory.buffer.byteLength !== type.initial * WASM_PAGE) continue;
      const list = this.free.get(module) ?? [];
      if (list.length >= this.keep) continue;
      new Uint8Array(memory.buffer).fill(0);
      list.push(memory);
      this.free.set(module, list);
    }
  }
}

export type { Lease as MemoryLease };

/** Module → memory type for the modules of a payload that import their memory. */
export function memoryTypesOf(modules: Readonly<Record<string, WebAssembly.Module>>, imported: Readonly<Record<string, MemoryType>>): Map<WebAssembly.Module, MemoryType> {
  const out = new Map<WebAssembly.Module, MemoryType>();
  for (const [name, type] of Object.entries(imported)) {
    const module = modules[name];
    if (module) out.set(module, type);
  }
  return out;
}
