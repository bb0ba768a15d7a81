/**
 * The slice of the WebAssembly JS API the sandbox uses. Node provides it at run time; the
 * project's TypeScript lib (es2024, no DOM) does not declare it.
 */
declare global {
  namespace WebAssembly {
    type ImportValue = unknown;
    type Imports = Record<string, Record<string, ImportValue>>;
    interface ModuleImportDescriptor {
      module: string;
      name: string;
      kind: 'function' | 'table' | 'memory' | 'global' | 'tag';
    }
    interface ModuleExportDescriptor {
      name: string;
      kind: 'function' | 'table' | 'memory' | 'global' | 'tag';
    }
    class Module {
      constructor(bytes: Uint8Array);
      static imports(module: Module): ModuleImportDescriptor[];
      static exports(module: Module): ModuleExportDescriptor[];
    }
    class Instance {
      constructor(module: Module, imports?: Imports);
      readonly exports: Record<string, unknown>;
    }
    class Memory {
      constructor(descriptor: { initial: number; maximum?: number });
      readonly buffer: ArrayBuffer;
      grow(delta: number): number;
    }
    class RuntimeError extends Error {}
    class CompileError extends Error {}
    class LinkError extends Error {}
    function compile(bytes: Uint8Array): Promise<Module>;
    function validate(bytes: Uint8Array): boolean;
  }
}
export {};
