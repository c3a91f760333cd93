/**
 * The export's drain deadline (server/env.ts): production gets 60 s unless
 * EXPORT_DRAIN_TIMEOUT_MS says otherwise, within bounds. That the route reads
 * it (and not a constant of its own) is test/integration/run-export-stall.test.ts,
 * which runs with a short one.
 */
import { describe, expect, it } from 'vitest';
import { EnvError, loadEnv } from '../../server/env.ts';

describe('EXPORT_DRAIN_TIMEOUT_MS', () => {
  it('is 60 s by default, in production as elsewhere', () => {
    expect(loadEnv({}).EXPORT_DRAIN_TIMEOUT_MS).toBe(60_000);
    expect(loadEnv({ NODE_ENV: 'production' }).EXPORT_DRAIN_TIMEOUT_MS).toBe(60_000);
  });

  it('takes a value within 100 ms – 1 h and refuses others, naming the variable', () => {
    expect(loadEnv({ EXPORT_DRAIN_TIMEOUT_MS: '300' }).EXPORT_DRAIN_TIMEOUT_MS).toBe(300);
    expect(loadEnv({ EXPORT_DRAIN_TIMEOUT_MS: '3600000' }).EXPORT_DRAIN_TIMEOUT_MS).toBe(3_600_000);
    for (const bad of ['0', '99', '3600001', '-1', '1.5', 'soon']) {
      expect(() => loadEnv({ EXPORT_DRAIN_TIMEOUT_MS: bad }), bad).toThrow(EnvError);
      expect(() => loadEnv({ EXPORT_DRAIN_TIMEOUT_MS: bad }), bad).toThrow(/EXPORT_DRAIN_TIMEOUT_MS/);
    }
  });
});
