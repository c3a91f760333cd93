/** The webhook worker's retry timing and the signature helpers, without I/O. */
import { describe, expect, it } from 'vitest';
import { DeliveryError, parseRetryAfter, webhookBackoff } from '../../jobs/webhooks/deliver-webhook.job.ts';
import { signWebhook, verifyWebhookSignature } from '../../domain/webhooks/webhook-signature.ts';

const job = { opts: { backoff: { type: 'webhook', delay: 1_000 } } } as unknown as Parameters<typeof webhookBackoff>[3];

describe('webhookBackoff', () => {
  it('honours the receiver\'s Retry-After when it sent one', () => {
    expect(webhookBackoff(1, 'webhook', new DeliveryError('receiver answered 503', 7_000), job)).toBe(7_000);
    expect(webhookBackoff(5, 'webhook', new DeliveryError('receiver answered 429', 0), job)).toBe(0);
  });

  it('otherwise doubles from the job\'s delay, within ±20 % jitter', () => {
    for (const [attempt, base] of [[1, 1_000], [2, 2_000], [3, 4_000], [6, 32_000]] as const) {
      for (let i = 0; i < 50; i++) {
        const d = webhookBackoff(attempt, 'webhook', new DeliveryError('receiver answered 500', null), job);
        expect(d).toBeGreaterThanOrEqual(base * 0.8);
        expect(d).toBeLessThanOrEqual(base * 1.2);
      }
    }
  });

  it('never waits more than a day', () => {
    expect(webhookBackoff(60, 'webhook', new Error('x'), job)).toBeLessThanOrEqual(24 * 3_600_000 * 1.2);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('reads seconds and HTTP dates, caps at an hour, ignores garbage', () => {
    expect(parseRetryAfter('3', now)).toBe(3_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('999999', now)).toBe(3_600_000);
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter('-5', now)).toBeNull();
    expect(parseRetryAfter(null, now)).toBeNull();
  });
});

describe('signatures', () => {
  const secret = 'whsec_test';
  const body = '{"type":"eval_run.completed","run":{}}';

  it('verifies what it signs, and nothing else', () => {
    const header = signWebhook(secret, body, 1_700_000_000);
    expect(header).toMatch(/^t=1700000000,v1=[0-9a-f]{64}$/);
    expect(verifyWebhookSignature(secret, body, header, { nowS: 1_700_000_010 })).toBe(true);
    expect(verifyWebhookSignature('whsec_other', body, header, { nowS: 1_700_000_010 })).toBe(false);
    expect(verifyWebhookSignature(secret, body.replace('completed', 'failed'), header, { nowS: 1_700_000_010 })).toBe(false);
    expect(verifyWebhookSignature(secret, body, header.replace('t=1700000000', 't=1700000001'), { nowS: 1_700_000_010 })).toBe(false);
    expect(verifyWebhookSignature(secret, body, undefined)).toBe(false);
    expect(verifyWebhookSignature(secret, body, 't=1,v1=zz')).toBe(false);
  });

  it('rejects a replay older than the tolerance', () => {
    const header = signWebhook(secret, body, 1_700_000_000);
    expect(verifyWebhookSignature(secret, body, header, { nowS: 1_700_000_000 + 301 })).toBe(false);
    expect(verifyWebhookSignature(secret, body, header, { nowS: 1_700_000_000 + 301, toleranceS: 600 })).toBe(true);
  });
});
