import pino, { type Logger } from 'pino';
import type { Env } from './env.ts';

export type { Logger };

/** Paths that must never reach a log line, whatever logs them. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'apiKey',
  'api_key',
  'key',
  '*.apiKey',
  '*.api_key',
  '*.key',
];

/** Credentials by their shape, wherever they land in a line (message, field, error, URL): API keys, bearer tokens, JWTs, OpenAI-style keys. */
const CREDENTIAL_SHAPES = /tl_[0-9A-Za-z]{20,}|\b(Bearer|Basic) +[^\s"\\]{8,}|\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]+|\bsk-[\w-]{20,}/g;

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Scrubs a finished JSON line. Paths (REDACT_PATHS) cannot catch a key inside
 * a message, an error or a URL; this can, because it sees every byte pino
 * writes. `secrets` are exact values (provider keys, admin passwords) whose
 * shape is unknown.
 */
export function credentialScrubber(secrets: readonly string[] = []): (line: string) => string {
  // Short values would scrub ordinary words; JSON-escaped forms are what the line holds.
  const exact = [...new Set(secrets.filter((s) => s.length >= 8).flatMap((s) => [s, JSON.stringify(s).slice(1, -1)]))];
  const exactRe = exact.length ? new RegExp(exact.map(escapeRegExp).join('|'), 'g') : null;
  return (line) => {
    let out = line.replace(CREDENTIAL_SHAPES, (m, scheme?: string) => (scheme ? `${scheme} [redacted]` : m.startsWith('tl_') ? 'tl_[redacted]' : '[redacted]'));
    if (exactRe) out = out.replace(exactRe, '[redacted]');
    return out;
  };
}

/** JSON logs (pino) with secrets redacted: by path, by shape and, for `secrets`, by value. */
export function createLogger(level: string, destination?: pino.DestinationStream, secrets: readonly string[] = []): Logger {
  return pino(
    {
      level,
      base: { service: 'evalgate' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      hooks: { streamWrite: credentialScrubber(secrets) },
    },
    destination,
  );
}

/** Configured secrets, whose shape the scrubber may not know: provider keys, board password, metrics token, the CLI's key. */
export function configuredSecrets(env: Env): string[] {
  return [
    ...Object.values(env.EVALGATE_PROVIDERS).flatMap((p) => (p.api_key ? [p.api_key] : [])),
    env.EVALGATE_BOARD_PASSWORD,
    env.EVALGATE_METRICS_TOKEN,
    env.EVALGATE_API_KEY,
    env.REDIS_PASSWORD,
    env.REDIS_SENTINEL_PASSWORD,
  ].filter((s): s is string => typeof s === 'string');
}
