import type { EvalItem } from './types.js';

export interface Target {
  /** The value the output is compared with. */
  value: unknown;
  /** How reasons name it: 'value' (from the config) or 'expected_output' (from the item). */
  label: 'value' | 'expected_output';
}

/** The config's `value` when it is set (even to null), else the item's `expected_output`. */
export function resolveTarget(config: { value?: unknown }, item: EvalItem): Target {
  if (config.value !== undefined) return { value: config.value, label: 'value' };
  return { value: item.expected_output, label: 'expected_output' };
}
