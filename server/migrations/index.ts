/** Every migration, in order. New ones are generated with `npm run migration:create` and appended here. */
import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261125000000Initial } from './Migration20261125000000Initial.ts';
import { Migration20261125222545ListIndexes } from './Migration20261125222545ListIndexes.ts';
import { Migration20261125224131JudgeUsage } from './Migration20261125224131JudgeUsage.ts';
import { Migration20261125224942IdempotencyKeys } from './Migration20261125224942IdempotencyKeys.ts';
import { Migration20261125225356Webhooks } from './Migration20261125225356Webhooks.ts';
import { Migration20261126012904ResultsWithoutRunForeignKey } from './Migration20261126012904ResultsWithoutRunForeignKey.ts';
import { Migration20261202034500ChunkCrashesAndReconcileCursor } from './Migration20261202034500ChunkCrashesAndReconcileCursor.ts';
import { Migration20261202034600UploadStaging } from './Migration20261202034600UploadStaging.ts';
import { Migration20261203120000RunNameAndMetadata } from './Migration20261203120000RunNameAndMetadata.ts';
import { Migration20261203150000TargetsAndSamples } from './Migration20261203150000TargetsAndSamples.ts';
import { Migration20261204190000Criteria } from './Migration20261204190000Criteria.ts';
import { Migration20261204200000Repetitions } from './Migration20261204200000Repetitions.ts';
import { Migration20261204210000CompareSummaries } from './Migration20261204210000CompareSummaries.ts';
import { Migration20261204220000RunDeletions } from './Migration20261204220000RunDeletions.ts';
import { Migration20261206020000PartitionedResults } from './Migration20261206020000PartitionedResults.ts';

export const migrationsList: MigrationObject[] = [
  { name: 'Migration20261125000000Initial', class: Migration20261125000000Initial },
  { name: 'Migration20261125222545ListIndexes', class: Migration20261125222545ListIndexes },
  { name: 'Migration20261125224131JudgeUsage', class: Migration20261125224131JudgeUsage },
  { name: 'Migration20261125224942IdempotencyKeys', class: Migration20261125224942IdempotencyKeys },
  { name: 'Migration20261125225356Webhooks', class: Migration20261125225356Webhooks },
  { name: 'Migration20261126012904ResultsWithoutRunForeignKey', class: Migration20261126012904ResultsWithoutRunForeignKey },
  { name: 'Migration20261202034500ChunkCrashesAndReconcileCursor', class: Migration20261202034500ChunkCrashesAndReconcileCursor },
  { name: 'Migration20261202034600UploadStaging', class: Migration20261202034600UploadStaging },
  { name: 'Migration20261203120000RunNameAndMetadata', class: Migration20261203120000RunNameAndMetadata },
  { name: 'Migration20261203150000TargetsAndSamples', class: Migration20261203150000TargetsAndSamples },
  { name: 'Migration20261204190000Criteria', class: Migration20261204190000Criteria },
  { name: 'Migration20261204200000Repetitions', class: Migration20261204200000Repetitions },
  { name: 'Migration20261204210000CompareSummaries', class: Migration20261204210000CompareSummaries },
  { name: 'Migration20261204220000RunDeletions', class: Migration20261204220000RunDeletions },
  { name: 'Migration20261206020000PartitionedResults', class: Migration20261206020000PartitionedResults },
];
