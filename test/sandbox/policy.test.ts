import { describe, expect, it } from 'vitest';
import { parse } from '@bytecodealliance/jco';
import { checkAddress, checkOrigin, excessImports, parseManifest, specialAddressReason } from '../../src/sandbox/index.ts';
import { capModuleMemory } from '../../src/sandbox/wasm-memory.ts';

describe('manifest', () => {
  it('fills defaults and grants nothing by default', () => {
    const m = parseManifest({ name: 'a', world: 'pure-action' });
    expect(m.grants).toEqual({ http: [], secrets: [], kv: [], config: [] });
    expect(m.limits.cpu_ms).toBe(m.limits.timeout_ms);
    expect(m.backend).toBe('quickjs');
  });

  it('refuses unknown keys, bad origins and out-of-range limits', () => {
    expect(() => parseManifest({ name: 'a', world: 'pure-action', grant: {} })).toThrow(/additional properties \(grant\)/);
    expect(() => parseManifest({ name: 'a', world: 'pure-action', grants: { http: ['example.com'] } })).toThrow(/grants\/http\/0/);
    expect(() => parseManifest({ name: 'a', world: 'pure-action', grants: { http: ['https://x.example/path'] } })).toThrow(/manifest-invalid|must match/);
    expect(() => parseManifest({ name: 'a', world: 'pure-action', limits: { memory_mb: 1 << 20 } })).toThrow(/memory_mb/);
    expect(() => parseManifest({ name: 'a', world: 'mystery' })).toThrow(/world/);
  });

  it('an import needs a non-empty grant', () => {
    const m = parseManifest({ name: 'a', world: 'http-action' });
    expect(excessImports(['attex:action/http@0.1.0', 'wasi:io/streams@0.2.12', 'wasi:logging/logging@0.1.0-draft'], m)).toEqual(['attex:action/http@0.1.0']);
    expect(excessImports(['wasi:sockets/tcp@0.2.0', 'wasi:io/streams@9.9.9', 'evil'], m)).toEqual(['wasi:sockets/tcp@0.2.0', 'wasi:io/streams@9.9.9', 'evil']);
  });
});

describe('outbound policy', () => {
  const grants = ['https://api.example.com', 'https://*.cdn.example.net:8443', 'http://10.0.0.5:8080'];
  it('matches scheme, host (with *. suffix) and port', () => {
    expect(checkOrigin('https://api.example.com/v1?x=1', grants).allowed).toBe(true);
    expect(checkOrigin('https://api.example.com:443/', grants).allowed).toBe(true);
    expect(checkOrigin('http://api.example.com/', grants).allowed).toBe(false);
    expect(checkOrigin('https://api.example.com:444/', grants).allowed).toBe(false);
    expect(checkOrigin('https://api.example.com.evil.org/', grants).allowed).toBe(false);
    expect(checkOrigin('https://a.b.cdn.example.net:8443/', grants).allowed).toBe(true);
    expect(checkOrigin('https://cdn.example.net:8443/', grants).allowed).toBe(false);
    expect(checkOrigin('https://user:pw@api.example.com/', grants).allowed).toBe(false);
    expect(checkOrigin('not a url', grants).allowed).toBe(false);
  });

  it('classifies special addresses, including mapped IPv6', () => {
    for (const ip of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:7f00:1']) {
      expect(specialAddressReason(ip), ip).toBeDefined();
    }
    for (const ip of ['8.8.8.8', '1.1.1.1', '2606:4700::1111']) expect(specialAddressReason(ip), ip).toBeUndefined();
  });

  it('lets a special address through only when the grant names that IP literal', () => {
    expect(checkAddress('10.0.0.5', '10.0.0.5', 'http://10.0.0.5:8080').allowed).toBe(true);
    expect(checkAddress('10.0.0.5', 'internal.example.com', 'http://internal.example.com').allowed).toBe(false);
    expect(checkAddress('93.184.216.34', 'example.com', 'https://example.com').allowed).toBe(true);
  });
});

describe('memory cap rewrite', () => {
  it('caps a module without a maximum and refuses an oversized minimum', async () => {
    const bytes = await parse('(module (memory (export "m") 1))');
    const capped = capModuleMemory(bytes, 4);
    const inst = new WebAssembly.Instance(new WebAssembly.Module(capped.bytes), {});
    const mem = inst.exports.m as WebAssembly.Memory;
    expect(mem.grow(3)).toBe(1);
    expect(() => mem.grow(1)).toThrow();
    const big = await parse('(module (memory 10))');
    expect(() => capModuleMemory(big, 4)).toThrow(expect.objectContaining({ code: 'sandbox.memory' }));
    expect(() => capModuleMemory(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 5, 200]), 4)).toThrow(expect.objectContaining({ code: 'sandbox.invalid-component' }));
  });
});
