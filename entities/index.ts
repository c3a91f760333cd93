/** The explicit entity list given to MikroORM (no folder discovery). */
import { ApiKey } from './api-key.entity.ts';
import { Dataset } from './dataset.entity.ts';
import { DatasetItem } from './dataset-item.entity.ts';
import { DatasetVersion } from './dataset-version.entity.ts';
import { Eval } from './eval.entity.ts';
import { EvalRun } from './eval-run.entity.ts';
import { EvalRunChunk } from './eval-run-chunk.entity.ts';
import { EvalRunComparison } from './eval-run-comparison.entity.ts';
import { EvalRunItem } from './eval-run-item.entity.ts';
import { EvalRunSample, SampleCacheEntry } from './eval-run-sample.entity.ts';
import { EvalVersion } from './eval-version.entity.ts';
import { IdempotencyKey } from './idempotency-key.entity.ts';
import { Tenant } from './tenant.entity.ts';
import { Webhook } from './webhook.entity.ts';
import { WebhookDelivery } from './webhook-delivery.entity.ts';

export { ApiKey, Dataset, DatasetItem, DatasetVersion, Eval, EvalRun, EvalRunChunk, EvalRunComparison, EvalRunItem, EvalRunSample, EvalVersion, SampleCacheEntry, IdempotencyKey, Tenant, Webhook, WebhookDelivery };
export { ROLES, type Role } from './api-key.entity.ts';
export { ACTIVE_RUN_STATUSES, FINISHED_RUN_STATUSES, isActiveRunStatus, RUN_STATUSES, type CriterionStatsRow, type RunStatus } from './eval-run.entity.ts';
export { IDEMPOTENCY_KEY_STATUSES, type IdempotencyKeyStatus } from './idempotency-key.entity.ts';
export { ITEM_STATUSES, type ItemStatus } from './eval-run-item.entity.ts';
export { SAMPLE_STATUSES, type SampleStatus } from './eval-run-sample.entity.ts';
export { WEBHOOK_EVENT_TYPES, type WebhookEventType } from './webhook-delivery.entity.ts';

export const entities = [
  Tenant,
  ApiKey,
  Dataset,
  DatasetVersion,
  DatasetItem,
  Eval,
  EvalVersion,
  EvalRun,
  EvalRunItem,
  EvalRunChunk,
  EvalRunSample,
  EvalRunComparison,
  SampleCacheEntry,
  IdempotencyKey,
  Webhook,
  WebhookDelivery,
];
