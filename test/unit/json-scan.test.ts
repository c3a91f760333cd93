/** The one-pass JSON scan the body parsers run before a parse: nesting depth and the values a parse will allocate. */
import { describe, expect, it } from 'vitest';
import { scanJson } from '../../server/transport-guards.ts';

describe('scanJson', () => {
  it('counts containers, scalars and keys once each, never separators or string contents', () => {
    expect(scanJson('[{},{}]', 128).values).toBe(3);
    expect(scanJson('{"items":[0,0]}', 128).values).toBe(5);
    expect(scanJson(' "a,b:[{" ', 128).values).toBe(1);
    expect(scanJson('[true, null, -1.5e3, "x\\"y,["]', 128).values).toBe(5);
    expect(scanJson('', 128).values).toBe(0);
  });

  it('counts as many values as JSON.parse builds, for any value', () => {
    const count = (v: unknown): number =>
      Array.isArray(v) ? 1 + v.reduce((n: number, e) => n + count(e), 0) : v !== null && typeof v === 'object' ? 1 + Object.entries(v).reduce((n, [, e]) => n + 1 + count(e), 0) : 1;
    for (const v of [[1, [2, [3]]], { a: { b: [null, true, 'x'] }, c: '' }, 'plain', 0, [[], {}], { 'k,:': '[{' }]) {
      expect(scanJson(JSON.stringify(v, null, 1), 128).values).toBe(count(v));
    }
  });

  it('stops at the first level deeper than the bound', () => {
    expect(scanJson('[[[]]]', 3).tooDeep).toBe(false);
    expect(scanJson('[[[[]]]]', 3).tooDeep).toBe(true);
    expect(scanJson('"[[[[[["', 3).tooDeep).toBe(false);
  });
});
