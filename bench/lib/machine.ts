/** What the bench ran on: cores, memory, CPU model, versions, load. */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { Redis } from 'ioredis';
import pg from 'pg';

export interface MachineInfo {
  date: string;
  nproc: number;
  memoryGiB: number;
  cpuModel: string;
  node: string;
  postgres: string;
  redis: string;
  kernel: string;
  loadAvg: string;
}

function readOr(path: string, fallback = ''): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

export function loadAvg(): string {
  return os
    .loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');
}

export async function machineInfo(databaseUrl: string, redis: Redis): Promise<MachineInfo> {
  const memKb = Number(/MemTotal:\s+(\d+) kB/.exec(readOr('/proc/meminfo'))?.[1] ?? os.totalmem() / 1024);
  const cpuModel = /model name\s*:\s*(.+)/.exec(readOr('/proc/cpuinfo'))?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  let postgres = 'unknown';
  try {
    const r = await client.query<{ server_version: string }>('show server_version');
    postgres = r.rows[0]?.server_version ?? postgres;
  } finally {
    await client.end();
  }
  const info = await redis.info('server');
  const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  return {
    date: new Date().toISOString(),
    nproc: os.availableParallelism(),
    memoryGiB: memKb / 1024 / 1024,
    cpuModel,
    node: process.version,
    postgres,
    redis: redisVersion,
    kernel: `${os.type()} ${os.release()}`,
    loadAvg: loadAvg(),
  };
}
