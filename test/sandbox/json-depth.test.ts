import { describe, expect, it } from 'vitest';
import { MAX_OUTPUT_DEPTH, jsonNestsDeeperThan } from '../../src/sandbox/index.ts';

const nested = (depth: number, open = '[', close = ']') => open.repeat(depth) + close.repeat(depth);

describe('jsonNestsDeeperThan', () => {
  it('counts arrays and objects, mixed', () => {
    expect(jsonNestsDeeperThan(nested(3), 3)).toBe(false);
    expect(jsonNestsDeeperThan(nested(4), 3)).toBe(true);
    expect(jsonNestsDeeperThan('{"a":{"b":[{"c":1}]}}', 4)).toBe(false);
    expect(jsonNestsDeeperThan('{"a":{"b":[{"c":[]}]}}', 4)).toBe(true);
    expect(jsonNestsDeeperThan('[[1],[2],[3]]', 2)).toBe(false);
    expect(jsonNestsDeeperThan('1', 0)).toBe(false);
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    expect(jsonNestsDeeperThan(JSON.stringify({ s: '[[[[[[{{{{' }), 1)).toBe(false);
    expect(jsonNestsDeeperThan(JSON.stringify(['a\\"[[[[', 'b\\\\']), 1)).toBe(false);
    expect(jsonNestsDeeperThan(JSON.stringify(['\\', [['x']]]), 2)).toBe(true);
  });

  it('handles what a recursive serializer cannot, without recursion', () => {
    const deep = nested(200_000);
    expect(() => JSON.stringify(JSON.parse(deep))).toThrow(RangeError);
    expect(jsonNestsDeeperThan(deep, MAX_OUTPUT_DEPTH)).toBe(true);
    const objects = '{"k":'.repeat(MAX_OUTPUT_DEPTH - 1) + '{}' + '}'.repeat(MAX_OUTPUT_DEPTH - 1);
    expect(() => JSON.parse(objects)).not.toThrow();
    expect(jsonNestsDeeperThan(objects, MAX_OUTPUT_DEPTH)).toBe(false);
    expect(jsonNestsDeeperThan(`[${objects}]`, MAX_OUTPUT_DEPTH)).toBe(true);
  });
});
