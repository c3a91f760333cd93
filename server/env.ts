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

export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: int(0, 65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
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
      const value = source[name];
      const shown = value === undefined ? 'unset' : `"${name.includes('KEY') || name.includes('URL') ? '…' : value}"`;
      return `  ${name} (${shown}): ${i.message}`;
    });
    throw new EnvError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const env = result.data;
  if (env.JWT_JWKS_URL && env.JWT_PUBLIC_KEY) {
    throw new EnvError('invalid configuration:\n  JWT_JWKS_URL and JWT_PUBLIC_KEY are exclusive: set one of them');
  }
  return env;
}
