/**
 * RESULT_RETENTION_DAYS and DELETION_BATCH_ROWS (server/env.ts): retention is
 * off unless set (empty counts as unset), within 1 – 36500 days; the purge's
 * batch is 5,000 rows unless set, within 1 – 100000. What they do is
 * test/integration/run-deletion.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { EnvError, loadEnv } from '../../server/env.ts';

describe('RESULT_RETENTION_DAYS', () => {
  it('is unset by default (runs are kept forever), and empty is unset', () => {
    expect(loadEnv({}).RESULT_RETENTION_DAYS).toBeUndefined();
    expect(loadEnv({ RESULT_RETENTION_DAYS: '' }).RESULT_RETENTION_DAYS).toBeUndefined();
    expect(loadEnv({ RESULT_RETENTION_DAYS: '  ' }).RESULT_RETENTION_DAYS).toBeUndefined();
  });

  it('takes 1 – 36500 days and refuses others, naming the variable', () => {
    expect(loadEnv({ RESULT_RETENTION_DAYS: '1' }).RESULT_RETENTION_DAYS).toBe(1);
    expect(loadEnv({ RESULT_RETENTION_DAYS: '36500' }).RESULT_RETENTION_DAYS).toBe(36_500);
    for (const bad of ['0', '36501', '-1', '1.5', 'forever']) {
      expect(() => loadEnv({ RESULT_RETENTION_DAYS: bad }), bad).toThrow(EnvError);
      expect(() => loadEnv({ RESULT_RETENTION_DAYS: bad }), bad).toThrow(/RESULT_RETENTION_DAYS/);
    }
  });
});

describe('DELETION_BATCH_ROWS', () => {
  it('is 5,000 by default and takes 1 – 100000', () => {
    expect(loadEnv({}).DELETION_BATCH_ROWS).toBe(5_000);
    expect(loadEnv({ DELETION_BATCH_ROWS: '1' }).DELETION_BATCH_ROWS).toBe(1);
    for (const bad of ['0', '100001', 'many']) expect(() => loadEnv({ DELETION_BATCH_ROWS: bad }), bad).toThrow(/DELETION_BATCH_ROWS/);
  });
});
