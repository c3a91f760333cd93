/**
 * Disposable Redis topologies for the topology suite, started by the tests
 * themselves from the machine's redis-server and redis-cli binaries on free
 * ports (test/helpers/processes.ts freePort), each in a temporary directory
 * that is removed at stop: a TLS or IPv6 standalone server, a replica, a
 * six-node cluster (3 masters, 3 replicas) and a Sentinel setup (1 master,
 * 1 replica, 3 sentinels), the last two also TLS-only with ACL users
 * (SecureRedis). Nothing is kept on disk; every server is SIGKILLed at stop.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort } from './processes.ts';
import { waitFor } from './stack.ts';

const run = promisify(execFile);

export interface RedisProc {
  port: number;
  child: ChildProcess;
  output(): string;
  kill(): Promise<void>;
}

// no 5 s wait before a replica's first full sync (Redis 7's diskless default): a replica that never synced cannot be failed over to
const COMMON = ['--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', '--repl-diskless-sync-delay', '0'];

export function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `evalgate-${name}-`));
}

/** redis-cli against one server (args after the connection options); its stdout. */
export async function cli(port: number, args: string[], opts: { host?: string; extra?: string[] } = {}): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', opts.host ?? '127.0.0.1', '-p', String(port), ...(opts.extra ?? []), ...args], { timeout: 10_000 });
  return stdout.trim();
}

/**
 * redis-server with `args` on a free port; resolves once `ping` (a redis-cli call, so TLS and ACL servers can be
 * probed with their own `cliExtra`) answers from this server. A port taken meanwhile: another one.
 */
export async function startRedis(args: (port: number) => string[], opts: { host?: string; cliExtra?: string[]; sentinel?: boolean; conf?: (port: number) => string } = {}): Promise<RedisProc> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const argv = [...(opts.conf ? [opts.conf(port)] : []), ...args(port), ...(opts.sentinel ? ['--sentinel'] : COMMON)];
    const child = spawn('redis-server', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => void (out = (out + b.toString()).slice(-20_000)));
    child.stderr.on('data', (b: Buffer) => void (out = (out + b.toString()).slice(-20_000)));
    const proc: RedisProc = {
      port,
      child,
      output: () => out,
      async kill() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await gone;
      },
    };
    try {
      await waitFor(
        async () => {
          if (child.exitCode !== null) throw new Error(`redis-server exited: ${out.slice(-2_000)}`);
          const info = await cli(port, ['info', 'server'], { host: opts.host, extra: opts.cliExtra }).catch(() => '');
          return Number(/process_id:(\d+)/.exec(info)?.[1]) === child.pid;
        },
        { timeoutMs: 15_000, intervalMs: 100, what: `redis-server on ${port}` },
      );
      return proc;
    } catch (err) {
      await proc.kill();
      if (attempt < 5 && /address already in use/i.test(out)) continue;
      throw err;
    }
  }
}

export interface TlsFiles {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/** A CA, a server certificate for the name `localhost` only (so the client must say which name: servername), a client certificate. */
export async function makeCertificates(): Promise<TlsFiles> {
  const dir = tempDir('tls');
  const f = (n: string) => join(dir, n);
  const ssl = (...args: string[]) => run('openssl', args, { cwd: dir, timeout: 30_000 });
  await ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=evalgate test CA');
  writeFileSync(f('server.ext'), 'subjectAltName=DNS:localhost\n');
  for (const who of ['server', 'client']) {
    await ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', `/CN=${who === 'server' ? 'localhost' : 'evalgate client'}`);
    await ssl('x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${who}.crt`), '-days', '2', ...(who === 'server' ? ['-extfile', f('server.ext')] : []));
  }
  return { dir, ca: f('ca.crt'), serverCert: f('server.crt'), serverKey: f('server.key'), clientCert: f('client.crt'), clientKey: f('client.key') };
}

/**
 * TLS on every port of a topology (clients, replication, the cluster bus, sentinels), client certificates
 * required, and an ACL user instead of `default` on the data nodes. The nodes' own certificate is the server
 * one (named `localhost`); they present it as client too when replicating, gossiping or watching.
 */
export interface SecureRedis {
  certs: TlsFiles;
  user: string;
  pass: string;
  /** ACL user and password of the sentinels themselves (`default` off there too); unset: the sentinels take no password. */
  sentinelUser?: string;
  sentinelPass?: string;
}

function tlsServerArgs(s: SecureRedis, port: number): string[] {
  return [
    '--port', '0', '--tls-port', String(port),
    '--tls-cert-file', s.certs.serverCert, '--tls-key-file', s.certs.serverKey, '--tls-ca-cert-file', s.certs.ca, '--tls-auth-clients', 'yes',
    '--tls-replication', 'yes',
    '--user', 'default', 'off', '--user', s.user, 'on', `>${s.pass}`, '~*', '&*', '+@all',
    // a replica authenticates to its master as the ACL user
    '--masteruser', s.user, '--masterauth', s.pass,
  ];
}

/** redis-cli's options for a data node or a sentinel of `s`. */
export function secureCli(s: SecureRedis, who: 'data' | 'sentinel' = 'data'): string[] {
  const tls = ['--tls', '--cacert', s.certs.ca, '--cert', s.certs.clientCert, '--key', s.certs.clientKey, '--sni', 'localhost'];
  if (who === 'sentinel') return s.sentinelUser ? [...tls, '--user', s.sentinelUser, '--pass', s.sentinelPass ?? '', '--no-auth-warning'] : tls;
  return [...tls, '--user', s.user, '--pass', s.pass, '--no-auth-warning'];
}

export interface ClusterNode extends RedisProc {
  dir: string;
}

export interface LocalCluster {
  nodes: ClusterNode[];
  /** `127.0.0.1:p1,127.0.0.1:p2,…` for REDIS_CLUSTER_NODES. */
  seeds: string;
  /** redis-cli against one node, with the cluster's TLS and ACL options if it has any. */
  cli(port: number, args: string[]): Promise<string>;
  /** The node (by port) that is master of `key`'s slot now. */
  masterOf(key: string): Promise<ClusterNode>;
  /** Waits until every live node says cluster_state:ok and every live replica is in sync with its master. */
  healthy(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Six `--cluster-enabled yes` nodes joined by `redis-cli --cluster create … --cluster-replicas 1`. With
 * `secure`: TLS-only nodes (`--port 0 --tls-port`, `--tls-cluster yes` for the bus, `--tls-replication yes`) and an ACL user.
 */
export async function startCluster(opts: { secure?: SecureRedis } = {}): Promise<LocalCluster> {
  const nodes: ClusterNode[] = [];
  const extra = opts.secure ? secureCli(opts.secure) : [];
  const cliTo = (port: number, args: string[]) => cli(port, args, { extra });
  try {
    for (let i = 0; i < 6; i++) {
      const dir = tempDir(`cluster${i}`);
      const listen = (port: number) => (opts.secure ? [...tlsServerArgs(opts.secure, port), '--tls-cluster', 'yes'] : ['--port', String(port)]);
      // a short node timeout: a killed master is failed over within seconds
      const proc = await startRedis((port) => [...listen(port), '--bind', '127.0.0.1', '--dir', dir, '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000'], { cliExtra: extra });
      nodes.push({ ...proc, dir });
    }
    await run('redis-cli', [...extra, '--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], { timeout: 60_000 });
  } catch (err) {
    for (const n of nodes) await n.kill();
    throw err;
  }
  const alive = () => nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null);
  const cluster: LocalCluster = {
    nodes,
    seeds: nodes.map((n) => `127.0.0.1:${n.port}`).join(','),
    cli: cliTo,
    async masterOf(key) {
      const any = alive()[0]!;
      const slot = Number(await cliTo(any.port, ['cluster', 'keyslot', key]));
      const lines = (await cliTo(any.port, ['cluster', 'nodes'])).split('\n');
      for (const line of lines) {
        const [, addr, flags, , , , , state, ...ranges] = line.split(' ');
        if (!flags?.includes('master') || flags.includes('fail') || state !== 'connected') continue;
        const owns = ranges.some((r) => {
          const [a, b] = r.split('-').map(Number);
          return slot >= a! && slot <= (b ?? a)!;
        });
        if (owns) {
          const port = Number(/:(\d+)@/.exec(addr ?? '')?.[1]);
          const node = nodes.find((n) => n.port === port);
          if (node) return node;
        }
      }
      throw new Error(`no master for slot ${slot}`);
    },
    async healthy() {
      await waitFor(
        async () => {
          for (const n of alive()) {
            if (!(await cliTo(n.port, ['cluster', 'info']).catch(() => '')).includes('cluster_state:ok')) return false;
            // a replica not yet in sync would refuse to take over from its master
            const repl = await cliTo(n.port, ['info', 'replication']).catch(() => '');
            if (repl.includes('role:slave') && !repl.includes('master_link_status:up')) return false;
          }
          return true;
        },
        { timeoutMs: 60_000, intervalMs: 200, what: 'cluster_state:ok on every node' },
      );
    },
    async stop() {
      for (const n of nodes) {
        await n.kill();
        rmSync(n.dir, { recursive: true, force: true });
      }
    },
  };
  await cluster.healthy();
  return cluster;
}

export interface LocalSentinel {
  master: RedisProc;
  replica: RedisProc;
  sentinels: RedisProc[];
  name: string;
  /** `127.0.0.1:s1,…` (with `hostname`: `localhost:s1,…`) for REDIS_SENTINELS. */
  list: string;
  /** redis-cli against a data node, with its TLS and ACL options if it has any. */
  cli(port: number, args: string[]): Promise<string>;
  /** redis-cli against a sentinel, likewise. */
  sentinelCli(port: number, args: string[]): Promise<string>;
  /** The port the sentinels name as master now. */
  masterPort(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * One master, one replica of it, three sentinels (quorum 2) watching them. With `secure`: TLS-only data nodes
 * and sentinels (`port 0`, `tls-port`, `tls-replication yes`: the sentinels reach the nodes and each other over
 * TLS too), the data nodes' ACL user given to the sentinels (`sentinel auth-user/auth-pass`), and if
 * `sentinelUser` is set, the sentinels' own ACL user (`sentinel sentinel-user/sentinel-pass` between them).
 */
export async function startSentinel(opts: { secure?: SecureRedis; hostname?: string } = {}): Promise<LocalSentinel> {
  const name = 'evalgate';
  const dirs: string[] = [];
  const procs: RedisProc[] = [];
  const sec = opts.secure;
  const dataExtra = sec ? secureCli(sec) : [];
  const sentinelExtra = sec ? secureCli(sec, 'sentinel') : [];
  const dataCli = (port: number, args: string[]) => cli(port, args, { extra: dataExtra });
  const sentinelCli = (port: number, args: string[]) => cli(port, args, { extra: sentinelExtra });
  // `hostname`: the nodes are known by that name (replica-announce-ip, sentinel resolve-hostnames/announce-hostnames),
  // on both loopbacks, whichever the name resolves to first
  const host = opts.hostname ?? '127.0.0.1';
  const listen = (port: number) => [
    ...(sec ? tlsServerArgs(sec, port) : ['--port', String(port)]),
    ...(opts.hostname ? ['--bind', '127.0.0.1', '::1', '--replica-announce-ip', opts.hostname] : ['--bind', '127.0.0.1']),
  ];
  try {
    const master = await startRedis((port) => listen(port), { cliExtra: dataExtra });
    procs.push(master);
    const replica = await startRedis((port) => [...listen(port), '--replicaof', host, String(master.port)], { cliExtra: dataExtra });
    procs.push(replica);
    await waitFor(async () => (await dataCli(replica.port, ['info', 'replication'])).includes('master_link_status:up'), { timeoutMs: 20_000, what: 'replica to sync' });
    const sentinels: RedisProc[] = [];
    for (let i = 0; i < 3; i++) {
      const dir = tempDir(`sentinel${i}`);
      dirs.push(dir);
      // sentinel rewrites its configuration file: one of its own, writable
      const conf = (port: number) => {
        const path = join(dir, `sentinel-${port}.conf`);
        const secure = !sec
          ? [`port ${port}`]
          : [
              'port 0',
              `tls-port ${port}`,
              `tls-cert-file ${sec.certs.serverCert}`,
              `tls-key-file ${sec.certs.serverKey}`,
              `tls-ca-cert-file ${sec.certs.ca}`,
              'tls-auth-clients yes',
              // the sentinels' own connections (to the nodes, to each other) over TLS as well
              'tls-replication yes',
              ...(sec.sentinelUser ? ['user default off', `user ${sec.sentinelUser} on >${sec.sentinelPass ?? ''} ~* &* +@all`] : []),
            ];
        writeFileSync(
          path,
          [
            ...secure,
            opts.hostname ? 'bind 127.0.0.1 ::1' : 'bind 127.0.0.1',
            `dir ${dir}`,
            ...(opts.hostname ? ['sentinel resolve-hostnames yes', 'sentinel announce-hostnames yes', `sentinel announce-ip ${opts.hostname}`] : []),
            `sentinel monitor ${name} ${host} ${master.port} 2`,
            `sentinel down-after-milliseconds ${name} 2000`,
            `sentinel failover-timeout ${name} 10000`,
            `sentinel parallel-syncs ${name} 1`,
            ...(sec ? [`sentinel auth-user ${name} ${sec.user}`, `sentinel auth-pass ${name} ${sec.pass}`] : []),
            ...(sec?.sentinelUser ? [`sentinel sentinel-user ${sec.sentinelUser}`, `sentinel sentinel-pass ${sec.sentinelPass ?? ''}`] : []),
            '',
          ].join('\n'),
        );
        return path;
      };
      const s = await startRedis(() => [], { sentinel: true, conf, cliExtra: sentinelExtra });
      sentinels.push(s);
      procs.push(s);
    }
    // every sentinel must know the replica and the other sentinels before a failover can be asked for
    await waitFor(
      async () => {
        for (const s of sentinels) {
          const info = await sentinelCli(s.port, ['sentinel', 'master', name]);
          const v = (k: string) => Number(new RegExp(`(?:^|\\n)${k}\\n(\\d+)`).exec(info)?.[1]);
          if (v('num-slaves') < 1 || v('num-other-sentinels') < 2) return false;
        }
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'sentinels to discover each other and the replica' },
    );
    const list = sentinels.map((s) => `${host}:${s.port}`).join(',');
    return {
      master,
      replica,
      sentinels,
      name,
      list,
      cli: dataCli,
      sentinelCli,
      async masterPort() {
        const out = await sentinelCli(sentinels[0]!.port, ['sentinel', 'get-master-addr-by-name', name]);
        return Number(out.split('\n')[1]);
      },
      async stop() {
        for (const p of procs) await p.kill();
        for (const d of dirs) rmSync(d, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const p of procs) await p.kill();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    throw err;
  }
}

export { sleep };
