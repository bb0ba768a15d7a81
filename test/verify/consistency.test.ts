import { describe, expect, it } from 'vitest';
import { hostGranted } from '../../src/verify/consistency.ts';

describe('used hosts against the grant (as receipts record them: no scheme)', () => {
  const granted = ['api.example.com', '*.svc.example.com', 'Upper.Example.com', 'internal.example.com:8443', 'plain.example.com:443', '[2001:db8::1]:9000', 'zero.example.com:0443', 'eight.example.com:08443'];
  const cases: Array<[string, boolean, string]> = [
    ['api.example.com', true, 'the same name'],
    ['API.example.com', true, 'names compare without case'],
    ['upper.example.com', true, 'a grant written in capitals'],
    ['other.example.com', false, 'another name'],
    ['a.svc.example.com', true, 'a name under a wildcard'],
    ['a.b.svc.example.com', true, 'a deeper name under a wildcard'],
    ['svc.example.com', false, 'the wildcard\'s own domain'],
    ['evilsvc.example.com', false, 'a name that only ends like the wildcard'],
    ['internal.example.com:8443', true, 'the granted port'],
    ['internal.example.com', false, 'a default port where another was granted'],
    ['internal.example.com:9443', false, 'another port'],
    ['api.example.com:8443', false, 'a port the grant does not name'],
    ['api.example.com:443', true, 'a default port written out'],
    ['plain.example.com', true, 'left out for a grant that wrote the default port'],
    ['[2001:db8::1]:9000', true, 'an IPv6 literal with its port'],
    ['[2001:db8::1]', false, 'an IPv6 literal on another port'],
    ['zero.example.com', true, 'a grant whose port has leading zeros (:0443)'],
    ['eight.example.com:8443', true, 'the same port written without its leading zero'],
    ['*.svc.example.com', false, 'a pattern is never a host contacted'],
    ['x.*.svc.example.com', false, 'nor is a name with a star in it'],
  ];
  it.each(cases)('%s -> %s (%s)', (used, expected) => {
    expect(hostGranted(used, granted)).toBe(expected);
  });
  it('grants nothing from an empty grant', () => {
    expect(hostGranted('api.example.com', [])).toBe(false);
  });
});
