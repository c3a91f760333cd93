/**
 * Summarises V8 CPU profiles (.cpuprofile, from `--cpu-prof`): self time by
 * package / source file and the top functions. `npm run bench -- --cpu-prof`
 * appends this to the report; on its own:
 *   node --import tsx bench/profile-summary.ts <dir-or-file> [topN]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, table } from './lib/stats.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function where(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? path);
  }
  return path.startsWith(ROOT) ? relative(ROOT, path) : path;
}

export function summarizeProfile(file: string, topN = 12, title = basename(file)): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const total = p.endTime - p.startTime;
  let idle = 0;
  const byWhere = new Map<string, number>();
  const byFn = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (!n) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    if (functionName === '(idle)') {
      idle += us;
      continue;
    }
    const w = where(url, functionName);
    byWhere.set(w, (byWhere.get(w) ?? 0) + us);
    const key = `${functionName || '(anonymous)'} ${url ? `${w}${w.includes('/') || w.includes('.ts') ? `:${lineNumber + 1}` : ''}` : ''}`.trim();
    byFn.set(key, (byFn.get(key) ?? 0) + us);
  }
  const busy = total - idle;
  // inclusive: a sample counts for every package / file anywhere on its (synchronous) stack
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map<string, number>();
  const chainCache = new Map<number, Set<string>>();
  const chainOf = (id: number): Set<string> => {
    const cached = chainCache.get(id);
    if (cached) return cached;
    const n = byId.get(id);
    const up = parent.get(id);
    const set = new Set(up === undefined ? [] : chainOf(up));
    if (n && n.callFrame.url) set.add(where(n.callFrame.url, n.callFrame.functionName));
    chainCache.set(id, set);
    return set;
  };
  for (const [id, us] of selfUs) {
    if (byId.get(id)?.callFrame.functionName === '(idle)') continue;
    for (const w of chainOf(id)) inclusive.set(w, (inclusive.get(w) ?? 0) + us);
  }
  const top = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN)
      .map(([k, us]) => [k, `${fmt(us / 1000)} ms`, `${((us / busy) * 100).toFixed(1)} %`]);
  return [
    `### ${title}`,
    '',
    `${fmt(total / 1e6, 1)} s profiled, ${fmt(busy / 1e6, 1)} s on CPU (${((busy / total) * 100).toFixed(0)} %).`,
    '',
    table(['self time by package / file', 'ms', '% of busy'], top(byWhere)),
    '',
    table(['inclusive time by package / file (on the synchronous stack)', 'ms', '% of busy'], top(inclusive)),
    '',
    table(['self time by function', 'ms', '% of busy'], top(byFn)),
  ].join('\n');
}

/** CPU time (µs) a profile spent outside (idle). */
function busyUs(file: string): number {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const idleIds = new Set(p.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
  let idle = 0;
  for (let i = 0; i < p.samples.length; i++) if (idleIds.has(p.samples[i] as number)) idle += p.timeDeltas[i] ?? 0;
  return p.endTime - p.startTime - idle;
}

/**
 * A file, or a directory of profiles, or a directory of per-process
 * directories (the bench's layout): for each process, its busiest thread's
 * profile (the main thread; tsx's loader thread only compiles at start-up).
 */
export function summarizeProfiles(dirOrFile: string, topN = 12): string {
  if (!statSync(dirOrFile).isDirectory()) return summarizeProfile(dirOrFile, topN);
  const entries = readdirSync(dirOrFile).sort();
  const groups: [string, string[]][] = [];
  const loose = entries.filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dirOrFile, f));
  if (loose.length) groups.push([basename(dirOrFile), loose]);
  for (const e of entries) {
    const dir = join(dirOrFile, e);
    if (!statSync(dir).isDirectory()) continue;
    const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f));
    if (files.length) groups.push([e, files]);
  }
  if (groups.length === 0) return `No .cpuprofile in ${dirOrFile}.`;
  const parts = groups.map(([name, files]) => {
    const busiest = files.map((f) => [f, busyUs(f)] as const).sort((a, b) => b[1] - a[1])[0]?.[0] as string;
    return summarizeProfile(busiest, topN, `${name} (${basename(busiest)})`);
  });
  return [`Profiles in \`${dirOrFile}\` (per process, its busiest thread).`, '', ...parts].join('\n\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const target = process.argv[2];
  if (!target) {
    process.stderr.write('usage: node --import tsx bench/profile-summary.ts <dir-or-file.cpuprofile> [topN]\n');
    process.exit(2);
  }
  process.stdout.write(`${summarizeProfiles(target, Number(process.argv[3] ?? 15))}\n`);
}
