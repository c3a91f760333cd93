/**
 * The REST types of `@evalgate/client/rest` (client/openapi-types.ts): what
 * openapi-typescript generates from the committed openapi.json. Written by
 * scripts/build-client.ts; test/unit/client-openapi-types.test.ts fails when
 * the committed file is stale.
 */
import { readFileSync } from 'node:fs';
import openapiTS, { astToString, type OpenAPI3 } from 'openapi-typescript';

export const OPENAPI_TYPES_FILE = new URL('../client/openapi-types.ts', import.meta.url);

const HEADER =
  '/**\n' +
  ' * Generated from openapi.json by openapi-typescript (scripts/client-openapi-types.ts):\n' +
  ' * do not edit; `npm run build:client` rewrites it.\n' +
  ' */\n';

export async function generateOpenApiTypes(): Promise<string> {
  const document = JSON.parse(readFileSync(new URL('../openapi.json', import.meta.url), 'utf8')) as OpenAPI3;
  return HEADER + astToString(await openapiTS(document));
}
