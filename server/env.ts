/**
 * The only module that reads process.env. Everything configurable is parsed
 * here once, by zod, so a bad value stops start-up with a message naming the
 * variable instead of failing later in some request.
 */
import { z } from 'zod';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));

/** One OpenAI-compatible chat-completions provider for llm_judge. */
export const providerSchema = z.strictObject({
  base_url: z.url({ protocol: /^https?$/ }).describe('e.g. https://api.openai.com/v1 (POST {base_url}/chat/completions)'),
  api_key: z.string().min(1).optional(),
  /** Requests in flight at once, across every worker process (Redis-backed). */
  concurrency: z.int().min(1).max(10_000).default(8),
  /** Requests per minute, across every worker process (Redis-backed). */
  rpm: z.int().min(1).max(1_000_000).default(600),
  timeout_ms: z.int().min(100).max(600_000).default(60_000),
  /** Attempts per item for 5xx, timeouts and unparsable answers (429s wait without using one up). */
  max_attempts: z.int().min(1).max(20).default(4),
  /** How to ask for JSON: OpenAI structured outputs, JSON mode, or only the prompt. */
  response_format: z.enum(['json_schema', 'json_object', 'none']).default('json_object'),
  prompt_usd_per_1m: z.number().min(0).optional(),
  completion_usd_per_1m: z.number().min(0).optional(),
});
export type ProviderConfig = z.infer<typeof providerSchema>;

const providersJson = z
  .string()
  .optional()
  .transform((raw, ctx) => {
    if (raw === undefined || raw.trim() === '') return {};
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a JSON object: {"name": {"base_url": …, "api_key": …}}' });
      return z.NEVER;
    }
  })
  .pipe(z.record(z.string().regex(/^[A-Za-z0-9_-]{1,100}$/, 'provider names: letters, digits, _ and -'), providerSchema));

export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: int(0, 65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  /** `main.ts worker` only: serve /metrics, /healthz and /readyz on this port (on HOST); unset, a worker listens on nothing. */
  WORKER_HTTP_PORT: int(0, 65535).optional(),
  DATABASE_URL: z
    .url({ protocol: /^postgres(ql)?$/ })
    .default('postgres://postgres@127.0.0.1:5432/evalgate'),
  /** Pool size of the PostgreSQL connection pool of one process. */
  DATABASE_POOL_MAX: int(1, 500).default(20),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).default('redis://127.0.0.1:6379'),
  EVALGATE_QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_{}.-]+$/, 'letters, digits, _ . - { } only')
    .default('evalgate'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  /** Session JWTs: one of JWT_JWKS_URL or JWT_PUBLIC_KEY (PEM, SPKI) enables them. */
  JWT_JWKS_URL: z.url().optional(),
  JWT_PUBLIC_KEY: optionalString,
  /** Algorithm of JWT_PUBLIC_KEY (a JWKS names its own). */
  JWT_ALGORITHM: z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA']).default('RS256'),
  JWT_ISSUER: optionalString,
  JWT_AUDIENCE: optionalString,
  /** Claim holding the organization id (Clerk: `org_id`), mapped to a tenant's external_org_id. */
  JWT_ORG_CLAIM: z.string().min(1).default('org_id'),
  /** Claim holding the organization role (Clerk: `org_role`, values like `org:admin`). */
  JWT_ROLE_CLAIM: z.string().min(1).default('org_role'),
  /** How long a resolved API key is trusted without asking Postgres again; bounds how long a revoked key keeps working. */
  API_KEY_CACHE_TTL_MS: int(0, 60_000).default(2_000),

  /** Largest accepted JSON request body. */
  BODY_LIMIT_BYTES: int(1024, 512 * 1024 * 1024).default(10 * 1024 * 1024),
  /**
   * Transport bounds (README: Limits). A client that stalls is cut with 408 `{ "error" }` and its buffers freed:
   * its headers must be complete within HEADERS_TIMEOUT_MS, a JSON body must arrive whole within
   * REQUEST_TIMEOUT_MS of its headers, and no body (the NDJSON upload's stream included) may fall silent
   * for longer than BODY_IDLE_TIMEOUT_MS. The upload is exempt from the total: it is long by design.
   */
  HEADERS_TIMEOUT_MS: int(100, 600_000).default(10_000),
  REQUEST_TIMEOUT_MS: int(100, 3_600_000).default(30_000),
  BODY_IDLE_TIMEOUT_MS: int(100, 600_000).default(10_000),
  /**
   * Body bytes (declared, at most BODY_LIMIT_BYTES each) of requests in flight, process-wide: requests not yet
   * authenticated share UNAUTH_BODY_BUDGET_BYTES, authenticated ones BODY_BUDGET_BYTES, one tenant at most
   * TENANT_BODY_BUDGET_BYTES of it. Beyond a budget the answer is 503 (429 for the tenant's) with Retry-After,
   * before any byte is read: together with MAX_CONNECTIONS they bound a process's request memory (README).
   */
  UNAUTH_BODY_BUDGET_BYTES: int(64 * 1024, 4 * 1024 * 1024 * 1024).default(16 * 1024 * 1024),
  BODY_BUDGET_BYTES: int(1024, 64 * 1024 * 1024 * 1024).default(256 * 1024 * 1024),
  TENANT_BODY_BUDGET_BYTES: int(1024, 64 * 1024 * 1024 * 1024).default(64 * 1024 * 1024),
  /** Open TCP connections one API process accepts (more are closed at once). */
  MAX_CONNECTIONS: int(1, 1_000_000).default(10_000),
  /** Calls in one tRPC batch request (400 above). */
  TRPC_MAX_BATCH: int(1, 10_000).default(50),
  /** Most items in one addDatasetItems JSON request (the NDJSON upload has no such cap). */
  MAX_ITEMS_PER_REQUEST: int(1, 1_000_000).default(10_000),
  /** Largest item (its JSON) in a request or an NDJSON line. */
  MAX_ITEM_BYTES: int(64, 64 * 1024 * 1024).default(1024 * 1024),
  /** Most items in one NDJSON upload. */
  MAX_UPLOAD_ITEMS: int(1, 100_000_000).default(5_000_000),

  /** Worker settings (issue: run execution). */
  WORKER_CONCURRENCY: int(1, 1000).default(4),
  CHUNK_SIZE: int(1, 100_000).default(500),
  LOCK_DURATION_MS: int(1_000, 3_600_000).default(30_000),
  STALLED_INTERVAL_MS: int(1_000, 3_600_000).default(30_000),
  RECONCILE_INTERVAL_MS: int(500, 3_600_000).default(30_000),
  SHUTDOWN_TIMEOUT_MS: int(0, 3_600_000).default(25_000),
  /** Attempts of one chunk job before BullMQ marks it failed (the reconciler retries it later). */
  CHUNK_ATTEMPTS: int(1, 100).default(8),

  /** Writes (mutations) per minute per tenant and per API key / session, shared by all API processes. */
  RATE_LIMIT_TENANT_WRITES_PER_MINUTE: int(1, 10_000_000).default(1_200),
  RATE_LIMIT_KEY_WRITES_PER_MINUTE: int(1, 10_000_000).default(600),
  /** Pending + running runs one tenant may have at once (429 above). */
  MAX_ACTIVE_RUNS_PER_TENANT: int(1, 1_000_000).default(50),
  /** Items one run may have (422 above). */
  MAX_ITEMS_PER_RUN: int(1, 1_000_000_000).default(10_000_000),
  /** llm_judge providers by name, as JSON (see README: LLM judge). Keys never leave this process. */
  EVALGATE_PROVIDERS: providersJson,
  /** Items per chunk job for llm_judge runs (slow items: small chunks spread across workers and record often). */
  JUDGE_CHUNK_SIZE: int(1, 10_000).default(50),
  /** Items judged at once inside one chunk job (the provider limits still apply on top). */
  JUDGE_CHUNK_PARALLELISM: int(1, 1_000).default(32),

  /** bull-board at /admin/queues behind HTTP Basic; mounted only when both are set. */
  EVALGATE_BOARD_USER: optionalString,
  EVALGATE_BOARD_PASSWORD: optionalString,
  /** Board shows queues and jobs but cannot retry, remove, pause or add any. */
  EVALGATE_BOARD_READONLY: z.stringbool().default(false),
  /** When set, /metrics answers only `Authorization: Bearer <token>`. */
  EVALGATE_METRICS_TOKEN: optionalString,

  /** Completion webhooks: attempts per delivery before giving up (each one is recorded in webhook_deliveries). */
  WEBHOOK_ATTEMPTS: int(1, 50).default(10),
  /** Delay before the first redelivery; doubles with every attempt (a receiver's Retry-After replaces it). */
  WEBHOOK_BACKOFF_MS: int(10, 3_600_000).default(2_000),
  /** How long a receiver has to answer one delivery. */
  WEBHOOK_TIMEOUT_MS: int(100, 120_000).default(10_000),
  /** Deliveries in flight per worker process. */
  WEBHOOK_CONCURRENCY: int(1, 1_000).default(8),
  /** Let webhooks reach loopback, private and link-local addresses (off: such targets are refused, see jobs/webhooks/webhook-target.ts). */
  WEBHOOK_ALLOW_PRIVATE_TARGETS: z.stringbool().default(false),
  /** Delivery attempts older than this are deleted by the reconciler. */
  WEBHOOK_DELIVERY_RETENTION_DAYS: int(1, 3_650).default(30),
  /** How often a watcher of a run (SSE, watchEvalRun) reads the run again: one single-row select per watcher. */
  RUN_WATCH_INTERVAL_MS: int(50, 60_000).default(500),

  /** CLI `runs:watch`: the evalgate to ask (`--url` wins). */
  EVALGATE_URL: z.url({ protocol: /^https?$/ }).default('http://localhost:8080'),
  /** CLI `runs:watch`: the API key to ask with (`--key` wins). */
  EVALGATE_API_KEY: optionalString,

  /** Test-only fault points; never set in production. */
  EVALGATE_FAULT: optionalString,
});

export type Env = z.infer<typeof envSchema>;

export class EnvError extends Error {
  override name = 'EnvError';
}

/** Parses an environment (process.env by default); throws EnvError naming every bad variable. */
export function loadEnv(source: Record<string, string | undefined> = process.env): Env {
  const result = envSchema.safeParse(source);
  if (!result.success) {
    const lines = result.error.issues.map((i) => {
      const name = i.path.join('.');
      const value = source[String(i.path[0])];
      const secret = /KEY|URL|PROVIDERS|PASSWORD|TOKEN|SECRET/.test(name);
      const shown = value === undefined ? 'unset' : `"${secret ? '…' : value}"`;
      return `  ${name} (${shown}): ${i.message}`;
    });
    throw new EnvError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const env = result.data;
  if (env.JWT_JWKS_URL && env.JWT_PUBLIC_KEY) {
    throw new EnvError('invalid configuration:\n  JWT_JWKS_URL and JWT_PUBLIC_KEY are exclusive: set one of them');
  }
  if (env.BODY_BUDGET_BYTES < env.BODY_LIMIT_BYTES || env.TENANT_BODY_BUDGET_BYTES < env.BODY_LIMIT_BYTES) {
    throw new EnvError('invalid configuration:\n  BODY_BUDGET_BYTES and TENANT_BODY_BUDGET_BYTES must be at least BODY_LIMIT_BYTES: a body of the largest size must fit');
  }
  if (!env.EVALGATE_BOARD_USER !== !env.EVALGATE_BOARD_PASSWORD) {
    throw new EnvError('invalid configuration:\n  EVALGATE_BOARD_USER and EVALGATE_BOARD_PASSWORD go together: set both or neither');
  }
  return env;
}
