import { defineEntity } from '@mikro-orm/core';
import { EvalRun } from './eval-run.entity.ts';
import { Tenant } from './tenant.entity.ts';
import { Webhook } from './webhook.entity.ts';

export const WEBHOOK_EVENT_TYPES = ['eval_run.completed', 'eval_run.failed'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/**
 * One attempt to deliver one run ending to one webhook, successful or not.
 * An ending is keyed by the run's `completed_at`: a retried run ends again
 * with another one, and that second ending is a new event.
 */
export const WebhookDelivery = defineEntity({
  name: 'WebhookDelivery',
  tableName: 'webhook_deliveries',
  properties: (p) => ({
    id: p.uuid().primary(),
    tenant_id: p.manyToOne(Tenant).mapToPk().fieldName('tenant_id').deleteRule('cascade'),
    webhook_id: p.manyToOne(Webhook).mapToPk().fieldName('webhook_id').deleteRule('cascade'),
    run_id: p.manyToOne(EvalRun).mapToPk().fieldName('run_id').deleteRule('cascade'),
    event_type: p.enum([...WEBHOOK_EVENT_TYPES]),
    /** the run's completed_at for the ending this attempt announces */
    run_ended_at: p.datetime().columnType('timestamptz'),
    attempt: p.integer(),
    /** the receiver's HTTP status; null when no answer came (timeout, refused, DNS) */
    status_code: p.integer().nullable(),
    error: p.text().nullable(),
    duration_ms: p.integer(),
    /** when the attempt was made */
    delivered_at: p.datetime().columnType('timestamptz'),
  }),
  indexes: [
    { name: 'webhook_deliveries_event_idx', properties: ['webhook_id', 'run_id', 'run_ended_at'] },
    // the cascade from a deleted run (retention deletes hundreds per sweep) finds its deliveries without a scan
    { name: 'webhook_deliveries_run_id_idx', properties: ['run_id'] },
  ],
});
