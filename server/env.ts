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

/** A JSON object of configs by name in one variable (EVALGATE_PROVIDERS, EVALGATE_TARGETS): empty when unset. */
function namedConfigsJson<T extends z.ZodType>(what: string, example: string, config: T) {
  return z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw.trim() === '') return {};
      try {
        return JSON.parse(raw) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: `must be a JSON object: ${example}` });
        return z.NEVER;
      }
    })
    .pipe(z.record(z.string().regex(/^[A-Za-z0-9_-]{1,100}$/, `${what} names: letters, digits, _ and -`), config));
}

const providersJson = namedConfigsJson('provider', '{"name": {"base_url": …, "api_key": …}}', providerSchema);

/** Headers no endpoint may set: the transport owns them (undici refuses some, others would desynchronise the connection). */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect', 'proxy-connection']);

/** One application endpoint for the `http` target (README: Targets). Its headers carry the credentials and never leave this process. */
export const targetEndpointSchema = z.strictObject({
  url: z
    .url({ protocol: /^https?$/ })
    .refine((u) => {
      const url = new URL(u);
      return url.username === '' && url.password === '';
    }, 'no user:password@ in the URL: credentials go in headers')
    .describe('e.g. https://my-app.internal/generate'),
  method: z.enum(['POST', 'PUT']).default('POST'),
  /** Sent with every request (credentials go here); a value is scrubbed from every message evalgate builds. */
  headers: z
    .record(
      z
        .string()
        .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,200}$/, 'a header name (an HTTP token)')
        .refine((h) => !RESERVED_HEADERS.has(h.toLowerCase()), { message: 'set by the transport, not by an endpoint' }),
      z.string().max(16_384).regex(/^[^\r\n\0]*$/, 'no CR, LF or NUL'),
    )
    .optional(),
  timeout_ms: z.int().min(100).max(600_000).default(30_000),
  /** Attempts per item for 5xx, timeouts and unparsable answers (429s wait without using one up). */
  max_attempts: z.int().min(1).max(20).default(3),
  /** Requests in flight at once, across every worker process (Redis-backed). */
  concurrency: z.int().min(1).max(10_000).default(16),
  /** Requests per minute, across every worker process (Redis-backed). */
  rpm: z.int().min(1).max(1_000_000).default(6_000),
  /** Let the endpoint be a loopback, private or link-local address (off: refused like a webhook's, domain/webhooks/webhook-target.ts). */
  allow_private: z.boolean().default(false),
  usd_per_call: z.number().min(0).optional(),
});
export type TargetEndpointConfig = z.infer<typeof targetEndpointSchema>;

const targetsJson = namedConfigsJson('endpoint', '{"name": {"url": …, "headers": {…}}}', targetEndpointSchema);

export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: int(0, 65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  /** `main.ts worker` only: serve /metrics, /healthz and /readyz on this port (on HOST); unset, a worker listens on nothing. */
  WORKER_HTTP_PORT: int(0, 65535).optional(),
  DATABASE_URL: z
    .url({ protocol: /^postgres(ql)?$/ })
    .default('postgres://postgres@127.0.0.1:5432/evalgate'),
  /**
   * A read replica (streaming, hot standby) of DATABASE_URL: the API's reads that may lag (get, list,
   * compare, export, watch) go there; writes, and reads inside a write, stay on DATABASE_URL. Unset: all on DATABASE_URL.
   */
  DATABASE_REPLICA_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
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
  /** Clock skew allowed between the JWT issuer and this server for exp, nbf and iat. */
  JWT_CLOCK_TOLERANCE_SECONDS: int(0, 600).default(5),
  /** Longest a session JWT may live (exp − iat, or exp − now without iat): longer-lived (or never-expiring) tokens are refused. */
  JWT_MAX_LIFETIME_SECONDS: int(1, 31 * 86_400).default(86_400),
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
  /**
   * JSON values (containers and elements) one request body may hold (413 above). A parse is charged
   * 64 bytes of heap per value against the body budgets, so a body of a million `{}` (3 MB of text, ~56 MB of
   * heap) counts as what it will cost, not as its bytes. Where the body budgets are smaller than MAX_JSON_VALUES × 64,
   * the cap is what they can hold (a body that could never fit is 413, not an endless 429).
   */
  MAX_JSON_VALUES: int(1_000, 100_000_000).default(1_000_000),
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
  /** Largest body of one list page (its items' JSON); the page is cut short with a next_cursor, a single larger row still comes alone. */
  MAX_PAGE_BYTES: int(64 * 1024, 1024 * 1024 * 1024).default(4 * 1024 * 1024),
  /** An NDJSON upload that staged nothing for this long is abandoned: the sweep deletes its staged lines. */
  UPLOAD_STAGING_TTL_MS: int(1_000, 86_400_000).default(15 * 60_000),

  /** Worker settings: concurrency, chunk size, BullMQ's lock and stall timings. */
  WORKER_CONCURRENCY: int(1, 1000).default(4),
  CHUNK_SIZE: int(1, 100_000).default(500),
  LOCK_DURATION_MS: int(1_000, 3_600_000).default(30_000),
  STALLED_INTERVAL_MS: int(1_000, 3_600_000).default(30_000),
  RECONCILE_INTERVAL_MS: int(500, 3_600_000).default(30_000),
  SHUTDOWN_TIMEOUT_MS: int(0, 3_600_000).default(25_000),
  /** Attempts of one chunk job before BullMQ marks it failed (the reconciler retries it later). */
  CHUNK_ATTEMPTS: int(1, 100).default(8),
  /** Starts of one chunk that may die with their worker (OOM, SIGKILL) before the next start writes its items as `error`. */
  CHUNK_MAX_CRASHES: int(1, 1_000).default(3),
  /** Pending + running runs one reconcile sweep visits at most; the next sweep goes on from where it stopped. */
  RECONCILE_SWEEP_RUNS: int(1, 1_000_000).default(5_000),

  /** Writes (mutations) per minute per tenant and per API key / session, shared by all API processes. */
  RATE_LIMIT_TENANT_WRITES_PER_MINUTE: int(1, 10_000_000).default(1_200),
  RATE_LIMIT_KEY_WRITES_PER_MINUTE: int(1, 10_000_000).default(600),
  /** Pending + running runs one tenant may have at once (429 above). */
  MAX_ACTIVE_RUNS_PER_TENANT: int(1, 1_000_000).default(50),
  /** Items one run may have (422 above). */
  MAX_ITEMS_PER_RUN: int(1, 1_000_000_000).default(10_000_000),
  /** llm_judge providers by name, as JSON (see README: LLM judge). Keys never leave this process. */
  EVALGATE_PROVIDERS: providersJson,
  /** `http` target endpoints by name, as JSON (see README: Targets). URLs and headers never leave this process. */
  EVALGATE_TARGETS: targetsJson,
  /** Items per chunk job for llm_judge runs (slow items: small chunks spread across workers and record often). */
  JUDGE_CHUNK_SIZE: int(1, 10_000).default(50),
  /** Items judged at once inside one chunk job (the provider limits still apply on top). */
  JUDGE_CHUNK_PARALLELISM: int(1, 1_000).default(32),
  /** Largest rendered llm_judge prompt (UTF-8 bytes, all messages): a larger one is that item's error, found before it is built. */
  MAX_PROMPT_BYTES: int(1_024, 256 * 1024 * 1024).default(2 * 1024 * 1024),

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
  /** Let webhooks reach loopback, private and link-local addresses (off: such targets are refused, see domain/webhooks/webhook-target.ts). */
  WEBHOOK_ALLOW_PRIVATE_TARGETS: z.stringbool().default(false),
  /** Delivery attempts older than this are deleted by the reconciler. */
  WEBHOOK_DELIVERY_RETENTION_DAYS: int(1, 3_650).default(30),
  /** Finished runs that ended (completed_at) more than this many days ago are deleted by the reconciler, results and all; unset: kept forever. */
  RESULT_RETENTION_DAYS: z.preprocess((v) => (typeof v === 'string' && v.trim() === '' ? undefined : v), int(1, 36_500).optional()),
  /** Rows one background deletion statement deletes at most (results, samples, chunks of deleted runs; items of deleted datasets). */
  DELETION_BATCH_ROWS: int(1, 100_000).default(5_000),
  /** How often a watched run (SSE, watchEvalRun) is read again: one single-row select per watched run and process, however many watch it. */
  RUN_WATCH_INTERVAL_MS: int(50, 60_000).default(500),
  /** Run watches (SSE streams + watchEvalRun subscriptions) one tenant may hold open in one API process; 429 with Retry-After beyond. */
  MAX_WATCHERS_PER_TENANT: int(1, 1_000_000).default(1_000),
  /**
   * How long an export (run items, compare) waits for a client that stopped reading to take the last page
   * before the server cuts its connection and frees its per-tenant slot (README: Configuration).
   */
  EXPORT_DRAIN_TIMEOUT_MS: int(100, 3_600_000).default(60_000),

  /** CLI `runs:watch`: the evalgate to ask (`--url` wins). */
  EVALGATE_URL: z.url({ protocol: /^https?$/ }).default('http://localhost:8080'),
  /** CLI `runs:watch`: the API key to ask with (`--key` wins). */
  EVALGATE_API_KEY: optionalString,

  /**
   * What DATABASE_URL reaches when it is not PostgreSQL itself: `session` or `transaction` for a
   * PgBouncer (or a pooler like it) in that pool_mode. Either sends nothing at connect but user and
   * database (PgBouncer refuses other startup parameters); `transaction` also makes statements
   * unnamed (see DATABASE_PREPARED_STATEMENTS) and leaves the statement timeout to the role (README:
   * Running past one machine). `none`: a direct connection, with the timeout sent at connect.
   */
  DATABASE_POOLER: z.enum(['none', 'session', 'transaction']).default('none'),
  /**
   * Named (server-side prepared) statements on the hot paths. Default: on, except behind
   * DATABASE_POOLER=transaction, where consecutive statements of one client land on different server
   * connections (a name is then unknown there, or already taken). On behind PgBouncer ≥ 1.21 with
   * max_prepared_statements > 0, which tracks names itself.
   */
  DATABASE_PREPARED_STATEMENTS: z.stringbool().optional(),
  /** Longest a statement may run (the last guard against a stuck query); 0 = no limit. Behind DATABASE_POOLER=transaction, set it on the role instead (README). */
  DATABASE_STATEMENT_TIMEOUT_MS: int(0, 86_400_000).default(120_000),
  /** Where creating the database and migrating go, when not through DATABASE_URL (e.g. PostgreSQL itself, past PgBouncer). Default: DATABASE_URL. */
  DATABASE_MIGRATION_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),

  /** Test-only fault points; never set in production. */
  EVALGATE_FAULT: optionalString,

  /**
   * Redis topology (README: Running past one machine). Unset: `cluster` when REDIS_CLUSTER_NODES is set,
   * `sentinel` when REDIS_SENTINELS is set, else `standalone` (REDIS_URL).
   */
  REDIS_MODE: z.enum(['standalone', 'cluster', 'sentinel']).optional(),
  /** Cluster seed nodes, `host:port,host:port` (IPv6 as `[::1]:7000`); unset in cluster mode, REDIS_URL's host is the seed. */
  REDIS_CLUSTER_NODES: optionalString,
  /** Sentinels, `host:port,host:port`; the master is asked of them by REDIS_SENTINEL_NAME. */
  REDIS_SENTINELS: optionalString,
  REDIS_SENTINEL_NAME: z.string().min(1).default('mymaster'),
  /** The sentinels' own ACL user and password (`requirepass` / `user` of sentinel.conf), apart from the data nodes'. */
  REDIS_SENTINEL_USERNAME: optionalString,
  REDIS_SENTINEL_PASSWORD: optionalString,
  /** ACL user and password of the data nodes; win over REDIS_URL's `user:password@` (keeps the secret out of the URL). */
  REDIS_USERNAME: optionalString,
  REDIS_PASSWORD: optionalString,
  /** TLS to every node (and sentinel); `rediss://` in REDIS_URL turns it on too. */
  REDIS_TLS: z.stringbool().optional(),
  /** PEM files: the CA that signed the servers' certificates, and this client's certificate and key (mutual TLS). */
  REDIS_TLS_CA_FILE: optionalString,
  REDIS_TLS_CERT_FILE: optionalString,
  REDIS_TLS_KEY_FILE: optionalString,
  /** Name the servers' certificates are checked against (SNI), when it is not the host connected to. */
  REDIS_TLS_SERVERNAME: optionalString,
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
      const secret = /KEY|URL|PROVIDERS|TARGETS|PASSWORD|TOKEN|SECRET/.test(name);
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
  const redis = redisTopologyErrors(env);
  if (redis.length) throw new EnvError(`invalid configuration:\n${redis.map((l) => `  ${l}`).join('\n')}`);
  return env;
}

/** Which Redis topology the settings describe (REDIS_MODE, else inferred from which lists are set). */
export function redisMode(env: Env): 'standalone' | 'cluster' | 'sentinel' {
  return env.REDIS_MODE ?? (env.REDIS_CLUSTER_NODES ? 'cluster' : env.REDIS_SENTINELS ? 'sentinel' : 'standalone');
}

/** `{tag}` with something in it: what makes every key of a prefix hash to one Redis Cluster slot. */
export const HASH_TAG = /\{[^}]+\}/;

function redisTopologyErrors(env: Env): string[] {
  const errors: string[] = [];
  const mode = redisMode(env);
  // BullMQ's Lua scripts touch many keys of a queue at once: on a cluster they must share a slot, or every one fails with CROSSSLOT.
  if (mode === 'cluster' && !HASH_TAG.test(env.EVALGATE_QUEUE_PREFIX)) {
    errors.push(`EVALGATE_QUEUE_PREFIX ("${env.EVALGATE_QUEUE_PREFIX}"): on a Redis Cluster it must carry a hash tag, e.g. "{evalgate}"`);
  }
  if (mode === 'sentinel' && !env.REDIS_SENTINELS) errors.push('REDIS_SENTINELS (unset): REDIS_MODE=sentinel needs the sentinels, host:port,host:port');
  if (mode !== 'cluster' && env.REDIS_CLUSTER_NODES) errors.push(`REDIS_CLUSTER_NODES: set, but REDIS_MODE is ${mode}`);
  if (mode !== 'sentinel' && env.REDIS_SENTINELS) errors.push(`REDIS_SENTINELS: set, but REDIS_MODE is ${mode}`);
  if (!env.REDIS_TLS_CERT_FILE !== !env.REDIS_TLS_KEY_FILE) errors.push('REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together: set both or neither');
  for (const name of ['REDIS_CLUSTER_NODES', 'REDIS_SENTINELS'] as const) {
    const list = env[name];
    if (list === undefined) continue;
    try {
      parseHostList(list);
    } catch (err) {
      errors.push(`${name}: ${(err as Error).message}`);
    }
  }
  return errors;
}

/** `host:port,[v6]:port` → hosts without IPv6 brackets (a bracketed host name fails DNS: ENOTFOUND [::1]). */
export function parseHostList(list: string): { host: string; port: number }[] {
  const nodes = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(entry);
      const port = Number(m?.[3]);
      if (!m || port < 1 || port > 65535) throw new Error(`"${entry}" is not host:port (IPv6: [addr]:port)`);
      return { host: (m[1] ?? m[2])!, port };
    });
  if (!nodes.length) throw new Error('empty list');
  return nodes;
}
