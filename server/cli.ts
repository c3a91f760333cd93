/**
 * `npm run -s cli -- <command> [--flags]`: one JSON object on stdout, errors on
 * stderr with a non-zero exit code. Logs go to stderr so stdout stays parseable.
 */
import { parseArgs } from 'node:util';
import pino from 'pino';
import { z } from 'zod';
import { ROLES } from '../entities/index.ts';
import { evaluatorConfigSchema } from '../domain/evaluators/evaluator.schema.ts';
import { addDatasetItems, createDataset } from '../domain/datasets/dataset.service.ts';
import { createEval } from '../domain/evals/eval.service.ts';
import { createApiKey, createTenant, listApiKeys, listTenants, LIST_LIMIT, revokeApiKey } from '../domain/tenants/tenant.service.ts';
import { watchRunInTerminal } from './cli-watch.ts';
import { exportRun, GateCouldNotRun, runGate } from './cli-gate.ts';
import { writeReport } from './cli-report.ts';
import { targetSchema } from '../domain/targets/target.schema.ts';
import { gateBaselineSchema, gatePolicySchema } from '../domain/eval-runs/gate.schema.ts';
import { createContainer, type Container } from './container.ts';
import { loadEnv, type Env } from './env.ts';
import { formatIssues } from '../domain/shared/errors.ts';
import { configuredSecrets, createLogger } from './logger.ts';

const USAGE = `usage: cli <command> [options]
  migrate                                   create the database if needed and apply migrations
  tenants:create --name N [--org ORG_ID]    create a tenant (ORG_ID: the session JWT org claim)
  keys:create --tenant ID [--role owner|member|viewer] [--name N]
  keys:revoke --id ID
  tenants:list                              tenants, oldest first (at most ${LIST_LIMIT}; "truncated" says if there are more)
  keys:list [--tenant ID]                   keys without their secret: id, tenant, name, role, key_prefix, created_at, revoked_at
  demo                                      a tenant, an owner key, a 10-item dataset and an exact_match eval
  runs:watch RUN_ID [--url URL] [--key KEY] follow a run live (progress on stderr); exit 0 if it completes, 1 if it fails
                                            (URL, KEY default to EVALGATE_URL, EVALGATE_API_KEY)
  report RUN_ID [--baseline RUN_ID] --out FILE [--url URL] [--key KEY]
                                            one self-contained HTML file: summary, histogram, slowest/costliest items, the change
  runs:export RUN_ID [--format jsonl|csv] [--status S] [--out FILE] [--url URL] [--key KEY]
                                            every result with its item (and sample) as JSON Lines or CSV, streamed to FILE or stdout
  gate (RUN_ID | --dataset ID --eval-version ID [--name N] [--metadata JSON] [--idempotency-key K]
                [--target JSON] [--max-cost-usd USD])
       --policy JSON [--baseline-run ID | --baseline-name N | --baseline-metadata JSON]
       [--junit FILE] [--markdown FILE] [--url URL] [--key KEY]
                                            schedule or take a run, follow it, apply the policy (POST /v1/eval-runs/{id}/gate);
                                            the verdict on stdout; exit 0 passed, 1 failed, 2 could not run`;

class UsageError extends Error {}

function flags(args: string[], spec: Record<string, { type: 'string' }>) {
  try {
    return parseArgs({ args, options: spec, strict: true, allowPositionals: false }).values as Record<string, string | undefined>;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new UsageError(formatIssues(r.error.issues));
  return r.data;
}

const commands: Record<string, (c: Container, args: string[]) => Promise<unknown>> = {
  async migrate(c) {
    const executed = await (await c.migrator()).getExecutedMigrations();
    return { status: 'ok', migrations: executed.map((m) => m.name) };
  },
  async 'tenants:create'(c, args) {
    const f = parse(z.object({ name: z.string().min(1), org: z.string().min(1).optional() }), flags(args, { name: { type: 'string' }, org: { type: 'string' } }));
    const t = await createTenant(c.orm.em.fork(), { name: f.name, externalOrgId: f.org });
    return f.org ? t : { id: t.id, name: t.name };
  },
  async 'keys:create'(c, args) {
    const f = parse(
      z.object({ tenant: z.uuid(), role: z.enum(ROLES).default('member'), name: z.string().optional() }),
      flags(args, { tenant: { type: 'string' }, role: { type: 'string' }, name: { type: 'string' } }),
    );
    return createApiKey(c.orm.em.fork(), { tenantId: f.tenant, role: f.role, name: f.name });
  },
  async 'keys:revoke'(c, args) {
    const f = parse(z.object({ id: z.uuid() }), flags(args, { id: { type: 'string' } }));
    return revokeApiKey(c.orm.em.fork(), f.id);
  },
  async 'tenants:list'(c, args) {
    flags(args, {});
    return listTenants(c.orm.em.fork());
  },
  async 'keys:list'(c, args) {
    const f = parse(z.object({ tenant: z.uuid().optional() }), flags(args, { tenant: { type: 'string' } }));
    return listApiKeys(c.orm.em.fork(), { tenantId: f.tenant });
  },
  async demo(c) {
    const em = c.orm.em.fork();
    const tenant = await createTenant(em, { name: 'demo' });
    const key = await createApiKey(em, { tenantId: tenant.id, role: 'owner', name: 'demo owner key' });
    const { dataset } = await createDataset(em, tenant.id, { name: 'capitals', description: 'demo dataset' });
    const capitals: [string, string, string][] = [
      ['France', 'Paris', 'Paris'],
      ['Japan', 'Tokyo', 'Tokyo'],
      ['Italy', 'Rome', 'Rome'],
      ['Canada', 'Ottawa', 'Toronto'],
      ['Australia', 'Canberra', 'Sydney'],
      ['Germany', 'Berlin', 'Berlin'],
      ['Brazil', 'Brasília', 'Rio de Janeiro'],
      ['Spain', 'Madrid', 'Madrid'],
      ['Egypt', 'Cairo', 'Cairo'],
      ['Turkey', 'Ankara', 'Istanbul'],
    ];
    const version = await addDatasetItems(
      em,
      tenant.id,
      dataset.id,
      capitals.map(([country, expected, output]) => ({
        input: `What is the capital of ${country}?`,
        expected_output: expected,
        output,
      })),
    );
    const created = await createEval(em, tenant.id, {
      name: 'exact capital',
      evaluator: evaluatorConfigSchema.parse({ type: 'exact_match' }),
    });
    return {
      tenant_id: tenant.id,
      api_key: key.key,
      dataset_id: dataset.id,
      dataset_version_id: version.id,
      eval_id: created.eval.id,
      eval_version_id: created.version.id,
    };
  },
};

/** Clients of a running evalgate: no database, no Redis, so they run anywhere the API is reachable. */
const remoteCommands: Record<string, (env: Env, args: string[]) => Promise<{ out: unknown; code: number; quiet?: boolean }>> = {
  async 'runs:watch'(env, args) {
    let parsed;
    try {
      parsed = parseArgs({ args, options: { url: { type: 'string' }, key: { type: 'string' } }, strict: true, allowPositionals: true });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (parsed.positionals.length > 1) throw new UsageError(`runs:watch takes one run id, got ${parsed.positionals.length}`);
    const f = parse(
      z.object({
        id: z.uuid({ error: 'the run id must be a UUID' }),
        url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
        key: z.string({ error: 'pass --key tl_… or set EVALGATE_API_KEY' }).min(1),
      }),
      { id: parsed.positionals[0], url: parsed.values.url ?? env.EVALGATE_URL, key: parsed.values.key ?? env.EVALGATE_API_KEY },
    );
    const run = await watchRunInTerminal({ url: f.url, apiKey: f.key, runId: f.id });
    return { out: run, code: run.status === 'completed' ? 0 : 1 };
  },

  async report(env, args) {
    let parsed;
    try {
      const str = { type: 'string' } as const;
      parsed = parseArgs({ args, options: { url: str, key: str, baseline: str, out: str }, strict: true, allowPositionals: true });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (parsed.positionals.length !== 1) throw new UsageError(`report takes one run id, got ${parsed.positionals.length}`);
    const f = parse(
      z.object({
        id: z.uuid({ error: 'the run id must be a UUID' }),
        baseline: z.uuid({ error: 'must be a UUID' }).optional(),
        out: z.string({ error: 'pass --out report.html' }).min(1),
        url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
        key: z.string({ error: 'pass --key tl_… or set EVALGATE_API_KEY' }).min(1),
      }),
      { id: parsed.positionals[0], baseline: parsed.values.baseline, out: parsed.values.out, url: parsed.values.url ?? env.EVALGATE_URL, key: parsed.values.key ?? env.EVALGATE_API_KEY },
    );
    try {
      return { out: await writeReport({ url: f.url, apiKey: f.key, runId: f.id, baselineId: f.baseline, out: f.out }), code: 0 };
    } catch (err) {
      if (!(err instanceof GateCouldNotRun)) throw err;
      process.stderr.write(`report could not run: ${err.message}\n`);
      return { out: { error: err.message }, code: 2 };
    }
  },

  async 'runs:export'(env, args) {
    let parsed;
    try {
      const str = { type: 'string' } as const;
      parsed = parseArgs({ args, options: { url: str, key: str, format: str, status: str, out: str }, strict: true, allowPositionals: true });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (parsed.positionals.length !== 1) throw new UsageError(`runs:export takes one run id, got ${parsed.positionals.length}`);
    const f = parse(
      z.object({
        id: z.uuid({ error: 'the run id must be a UUID' }),
        url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
        key: z.string({ error: 'pass --key tl_… or set EVALGATE_API_KEY' }).min(1),
        format: z.enum(['jsonl', 'csv']).default('jsonl'),
        status: z.enum(['passed', 'failed', 'error']).optional(),
      }),
      { id: parsed.positionals[0], url: parsed.values.url ?? env.EVALGATE_URL, key: parsed.values.key ?? env.EVALGATE_API_KEY, format: parsed.values.format, status: parsed.values.status },
    );
    try {
      const written = await exportRun({ url: f.url, apiKey: f.key, runId: f.id, format: f.format, status: f.status }, parsed.values.out);
      return { out: { run_id: f.id, format: f.format, ...written, ...(parsed.values.out !== undefined && { out: parsed.values.out }) }, code: 0, quiet: parsed.values.out === undefined };
    } catch (err) {
      if (!(err instanceof GateCouldNotRun)) throw err;
      process.stderr.write(`export could not run: ${err.message}\n`);
      return { out: { error: err.message }, code: 2 };
    }
  },

  async gate(env, args) {
    let parsed;
    try {
      const str = { type: 'string' } as const;
      parsed = parseArgs({
        args,
        options: {
          url: str, key: str, dataset: str, 'eval-version': str, name: str, metadata: str, 'idempotency-key': str, target: str, 'max-cost-usd': str,
          policy: str, 'baseline-run': str, 'baseline-name': str, 'baseline-metadata': str, junit: str, markdown: str,
        },
        strict: true,
        allowPositionals: true,
      });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const v = parsed.values;
    const json = (what: string, text: string | undefined): unknown => {
      if (text === undefined) return undefined;
      try {
        return JSON.parse(text);
      } catch {
        throw new UsageError(`--${what} must be JSON`);
      }
    };
    if (parsed.positionals.length > 1) throw new UsageError(`gate takes at most one run id, got ${parsed.positionals.length}`);
    const runId = parsed.positionals[0];
    if ((runId === undefined) === (v.dataset === undefined)) throw new UsageError('gate: give a RUN_ID or --dataset and --eval-version');
    const f = parse(
      z.object({
        url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
        key: z.string({ error: 'pass --key tl_… or set EVALGATE_API_KEY' }).min(1),
        runId: z.uuid({ error: 'the run id must be a UUID' }).optional(),
        dataset: z.uuid({ error: 'must be a UUID' }).optional(),
        evalVersion: z.uuid({ error: 'must be a UUID' }).optional(),
        policy: gatePolicySchema,
        baseline: gateBaselineSchema.optional(),
        target: targetSchema.optional(),
        maxCostUsd: z.coerce.number({ error: 'must be a number' }).positive().optional(),
      }),
      {
        url: v.url ?? env.EVALGATE_URL,
        key: v.key ?? env.EVALGATE_API_KEY,
        runId,
        dataset: v.dataset,
        evalVersion: v['eval-version'],
        policy: json('policy', v.policy) ?? {},
        target: json('target', v.target),
        maxCostUsd: v['max-cost-usd'],
        baseline:
          v['baseline-run'] !== undefined || v['baseline-name'] !== undefined || v['baseline-metadata'] !== undefined
            ? { run_id: v['baseline-run'], name: v['baseline-name'], metadata: json('baseline-metadata', v['baseline-metadata']) }
            : undefined,
      },
    );
    if (f.dataset !== undefined && f.evalVersion === undefined) throw new UsageError('gate: --dataset needs --eval-version');
    if (f.runId !== undefined && (f.target !== undefined || f.maxCostUsd !== undefined)) throw new UsageError('gate: --target and --max-cost-usd go with --dataset (a new run)');
    const metadata = json('metadata', v.metadata);
    try {
      const { verdict, code } = await runGate({
        url: f.url,
        apiKey: f.key,
        run: f.runId !== undefined
          ? { id: f.runId }
          : {
              datasetId: f.dataset as string,
              evalVersionId: f.evalVersion as string,
              name: v.name,
              metadata: metadata as Record<string, unknown> | undefined,
              idempotencyKey: v['idempotency-key'],
              target: f.target,
              maxCostUsd: f.maxCostUsd,
            },
        policy: f.policy,
        baseline: f.baseline,
        junitPath: v.junit,
        markdownPath: v.markdown,
      });
      process.stderr.write(`gate ${verdict.verdict}${verdict.reasons.length ? `: ${verdict.reasons.join('; ')}` : ''}\n`);
      return { out: verdict, code };
    } catch (err) {
      if (!(err instanceof GateCouldNotRun)) throw err;
      process.stderr.write(`gate could not run: ${err.message}\n`);
      return { out: { error: err.message }, code: 2 };
    }
  },
};

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const command = name ? commands[name] : undefined;
  const remote = name ? remoteCommands[name] : undefined;
  if (!command && !remote) {
    process.stderr.write(`${name ? `unknown command "${name}"\n` : ''}${USAGE}\n`);
    return 2;
  }
  const env = loadEnv();
  if (remote) {
    const { out, code, quiet } = await remote(env, args);
    // an export to stdout is the data itself: its summary goes to stderr
    (quiet ? process.stderr : process.stdout).write(`${JSON.stringify(out)}\n`);
    return code;
  }
  if (!command) return 2;
  const log = createLogger(env.LOG_LEVEL === 'info' ? 'warn' : env.LOG_LEVEL, pino.destination(2), configuredSecrets(env));
  const container = await createContainer(env, { log });
  try {
    const out = await command(container, args);
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return 0;
  } finally {
    await container.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    const usage = err instanceof UsageError;
    process.stderr.write(`error: ${err.message}\n${usage ? `${USAGE}\n` : ''}`);
    process.exitCode = usage ? 2 : 1;
  },
);
