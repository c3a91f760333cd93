import { describe, expect, it } from 'vitest';
import { procedures } from '../../routers/_app.ts';
import { STANDARD_ERRORS } from '../../routers/meta.ts';

describe('which REST transport serves each procedure (read from its meta)', () => {
  it('the hot schedule path is served by the direct route, and only mutations are', () => {
    const direct = procedures.filter((p) => p.rest === 'direct');
    expect(direct.map((p) => p.name)).toEqual(['scheduleEvalRun']);
    expect(direct.every((p) => p.type === 'mutation')).toBe(true);
  });

  it('every other query and mutation is served by trpc-to-openapi, listing the standard error statuses', () => {
    for (const p of procedures) {
      if (p.type === 'subscription') {
        expect(p.rest, p.name).toBeNull();
        continue;
      }
      expect(p.rest, p.name).not.toBeNull();
      expect(p.meta?.openapi?.errorResponses, p.name).toEqual(expect.arrayContaining([...STANDARD_ERRORS]));
      expect(p.meta?.openapi?.operationId, `${p.name}: the operationId is the key`).toBeUndefined();
    }
  });
});
