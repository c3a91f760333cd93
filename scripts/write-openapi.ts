/** Writes the generated OpenAPI document to openapi.json (a test fails when the two differ). */
import { writeFileSync } from 'node:fs';
import { buildOpenApiDocument } from '../server/openapi.ts';

writeFileSync(new URL('../openapi.json', import.meta.url), `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`);
process.stdout.write('wrote openapi.json\n');
