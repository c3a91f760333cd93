/**
 * The generated OpenAPI document: the committed openapi.json must equal it,
 * and the scheduleEvalRun operation must match the contract field by field.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildOpenApiDocument } from '../../server/openapi.ts';

type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const contract = parse(readFileSync(new URL('../../contract/schedule-eval-run.openapi.yaml', import.meta.url), 'utf8')) as Doc;
const generated = buildOpenApiDocument() as Doc;

function resolve(doc: Doc, node: Doc | undefined): Doc {
  let n = node;
  for (let i = 0; n && typeof n.$ref === 'string' && i < 10; i++) {
    const path = (n.$ref as string).replace(/^#\//, '').split('/');
    n = path.reduce<Doc | undefined>((acc, k) => acc?.[k], doc);
  }
  if (!n) throw new Error(`unresolvable ${JSON.stringify(node)}`);
  return n;
}

/** Type, format, enum and nullability of a property, however the document spells nullability. */
function shape(doc: Doc, node: Doc): { types: string[]; format?: string; enum?: unknown[] } {
  const s = resolve(doc, node);
  const types = new Set<string>();
  let format: string | undefined = s.format;
  let en: unknown[] | undefined = s.enum;
  const add = (t: unknown) => (Array.isArray(t) ? t.forEach((x) => types.add(String(x))) : t !== undefined && types.add(String(t)));
  add(s.type);
  if (s.nullable === true) types.add('null');
  for (const alt of (s.anyOf ?? s.oneOf ?? []) as Doc[]) {
    const r = shape(doc, alt);
    r.types.forEach((t) => types.add(t));
    format ??= r.format;
    en ??= r.enum;
  }
  return { types: [...types].sort(), ...(format ? { format } : {}), ...(en ? { enum: en } : {}) };
}

describe('OpenAPI document', () => {
  it('equals the committed openapi.json (run `npm run openapi:write` after changing a procedure)', () => {
    const committed = JSON.parse(readFileSync(new URL('../../openapi.json', import.meta.url), 'utf8')) as Doc;
    expect(committed).toEqual(JSON.parse(JSON.stringify(generated)));
  });

  it('names only relative servers, so /docs "Try it out" calls the origin that served the page', () => {
    expect(generated.servers).toEqual([expect.objectContaining({ url: '/' })]);
  });

  describe('scheduleEvalRun matches the contract', () => {
    const path = '/v1/datasets/{id}/runs';
    const want = contract.paths[path].post as Doc;
    const got = generated.paths[path]?.post as Doc;

    it('has the same path, method, operationId, tags, summary and security', () => {
      expect(got).toBeDefined();
      expect(got.operationId).toBe(want.operationId);
      expect(got.tags).toEqual(want.tags);
      expect(got.summary).toBe(want.summary);
      expect(got.security ?? generated.security).toEqual([{ BearerAuth: [] }]);
      expect(generated.components.securitySchemes.BearerAuth).toMatchObject(contract.components.securitySchemes.BearerAuth);
    });

    it('has the same path parameter', () => {
      const wantParam = want.parameters[0] as Doc;
      const gotParam = (got.parameters as Doc[]).find((p) => p.name === wantParam.name);
      expect(gotParam).toMatchObject({ name: 'id', in: 'path', required: true });
      expect(shape(generated, gotParam!.schema)).toEqual(shape(contract, wantParam.schema));
    });

    it('has the same request body', () => {
      expect(got.requestBody.required).toBe(true);
      const wantBody = resolve(contract, want.requestBody.content['application/json'].schema);
      const gotBody = resolve(generated, got.requestBody.content['application/json'].schema);
      expect(got.requestBody.content['application/json'].schema).toEqual(want.requestBody.content['application/json'].schema);
      expect(gotBody.required).toEqual(wantBody.required);
      for (const [name, prop] of Object.entries(wantBody.properties as Doc)) {
        expect(shape(generated, gotBody.properties[name]), name).toEqual(shape(contract, prop as Doc));
      }
    });

    it('answers 202 with EvalRun: every contract field, same type, format, enum and nullability', () => {
      expect(Object.keys(got.responses)).toContain('202');
      expect(got.responses['200']).toBeUndefined();
      const wantRun = resolve(contract, want.responses['202'].content['application/json'].schema);
      const gotRun = resolve(generated, got.responses['202'].content['application/json'].schema);
      expect(got.responses['202'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/EvalRun' });
      for (const field of wantRun.required as string[]) expect(gotRun.required, field).toContain(field);
      for (const [name, prop] of Object.entries(wantRun.properties as Doc)) {
        expect(gotRun.properties[name], name).toBeDefined();
        expect(shape(generated, gotRun.properties[name]), name).toEqual(shape(contract, prop as Doc));
      }
      for (const extra of ['dataset_version_id', 'passed_count', 'failed_count', 'error_count', 'mean_score']) {
        expect(gotRun.properties[extra], extra).toBeDefined();
      }
    });

    it('answers 404 (and every other error) with ErrorResponse', () => {
      expect(got.responses['404']).toEqual(want.responses['404']);
      const wantError = resolve(contract, contract.components.schemas.ErrorResponse);
      for (const [code, response] of Object.entries(got.responses as Record<string, Doc>)) {
        if (Number(code) < 400) continue;
        const schema = resolve(generated, resolve(generated, response).content['application/json'].schema);
        expect(schema.required, code).toEqual(wantError.required);
        expect(shape(generated, schema.properties.error)).toEqual(shape(contract, wantError.properties.error));
      }
      for (const code of ['400', '401', '403', '404']) expect(Object.keys(got.responses)).toContain(code);
    });
  });

  it('names every operation after its procedure and documents only { error } bodies for errors', () => {
    for (const [path, ops] of Object.entries(generated.paths as Record<string, Doc>)) {
      for (const [method, op] of Object.entries(ops)) {
        expect(op.operationId, `${method} ${path}`).toMatch(/^[a-z][A-Za-z]+$/);
        for (const [code, r] of Object.entries(op.responses as Record<string, Doc>)) {
          if (Number(code) >= 400) expect(r.$ref, `${method} ${path} ${code}`).toMatch(/^#\/components\/responses\//);
        }
      }
    }
    expect(Object.keys(generated.components.schemas).filter((n) => n.startsWith('error.'))).toEqual([]);
  });
});
