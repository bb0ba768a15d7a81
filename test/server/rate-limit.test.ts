import { describe, expect, it } from 'vitest';
import { CallerRateLimiter } from '../../src/server/admission.ts';

describe('CallerRateLimiter', () => {
  it('spends a burst, then refills at the rate', () => {
    const l = new CallerRateLimiter({ ratePerSecond: 2, burst: 3 });
    expect([0, 0, 0].map(() => l.take('a', 0))).toEqual([0, 0, 0]);
    expect(l.take('a', 0)).toBe(1); // wait 1 s (rounded up) for the next token
    expect(l.take('a', 500)).toBe(0);
    expect(l.take('a', 500)).toBe(1);
    expect(l.take('b', 500)).toBe(0); // another key has its own budget
  });

  it('keeps state bounded: refilled buckets are dropped, and past the cap the least recently used', () => {
    const l = new CallerRateLimiter({ ratePerSecond: 1, burst: 2 }, 1000);
    for (let i = 0; i < 5000; i++) l.take(`addr-${i}`, 0);
    expect(l.size).toBeLessThanOrEqual(1000);
    // A bucket still draining is kept while under the cap...
    const m = new CallerRateLimiter({ ratePerSecond: 1, burst: 2 }, 1000);
    m.take('x', 0);
    m.take('x', 0);
    m.take('y', 100);
    expect(m.take('x', 200)).toBe(1); // ...so x is still limited
    // ...and once refilled it is gone, with the same effect as a full bucket.
    m.take('z', 5000);
    expect(m.size).toBe(1);
    expect([m.take('x', 5000), m.take('x', 5000), m.take('x', 5000)]).toEqual([0, 0, 1]);
  });
});
