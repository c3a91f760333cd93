/**
 * `@evalgate/client/rest` is typed by client/openapi-types.ts: it must be what
 * openapi-typescript generates from the committed openapi.json (run
 * `npm run build:client` after `npm run openapi:write`).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateOpenApiTypes, OPENAPI_TYPES_FILE } from '../../scripts/client-openapi-types.ts';

describe('client/openapi-types.ts', () => {
  it('equals the types generated from openapi.json', async () => {
    expect(readFileSync(OPENAPI_TYPES_FILE, 'utf8')).toBe(await generateOpenApiTypes());
  });
});
