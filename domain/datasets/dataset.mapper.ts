import type { DatasetDto, DatasetVersionDto } from './dataset.schema.ts';
import type { DatasetItemRow, DatasetRow, DatasetVersionRow } from './dataset.repository.ts';

export const iso = (d: Date | string): string => new Date(d).toISOString();

export function toDatasetDto(r: DatasetRow): DatasetDto {
  return {
    id: r.id,
    tenant_id: r.tenant_id,
    name: r.name,
    description: r.description,
    latest_version: r.latest_version,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

export function toDatasetVersionDto(r: DatasetVersionRow): DatasetVersionDto {
  return { id: r.id, dataset_id: r.dataset_id, version: r.version, item_count: r.item_count, created_at: iso(r.created_at) };
}

export function toDatasetItemDto(r: DatasetItemRow) {
  return {
    id: r.id,
    input: r.input,
    expected_output: r.expected_output ?? null,
    output: r.output ?? null,
    metadata: r.metadata ?? null,
    created_at: iso(r.created_at),
  };
}
