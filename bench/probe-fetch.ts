/**
 * What one chat-completions request costs the client's CPU: Node's global
 * `fetch` (with and without an AbortSignal.any + AbortSignal.timeout) against
 * `node:http` with a keep-alive agent, undici's `request()` with a keep-alive
 * Agent, and the client itself (`callChatCompletions`, undici `request()` plus
 * its timeout, cancellation and classification). The fake provider
 * (test/helpers/fake-llm.ts, no latency) runs in a child process, so only the
 * client's CPU is counted here.
 *
 *   node --import tsx bench/probe-fetch.ts [requests=5000] [concurrency=64] [mode-prefix,…]
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Agent as UndiciAgent, request as undiciRequest } from 'undici';
import { callChatCompletions } from '../domain/evaluators/llm-judge/provider-client.ts';
import { providerSchema } from '../server/env.ts';
import { startFakeLlm } from '../test/helpers/fake-llm.ts';

if (process.argv[2] === 'server') {
  const fake = await startFakeLlm({ latencyMs: 0 });
  process.stdout.write(`${fake.url}/chat/completions\n`);
  process.on('SIGTERM', () => void fake.close().then(() => process.exit(0)));
} else {
  const n = Number(process.argv[2] ?? 5_000);
  const concurrency = Number(process.argv[3] ?? 64);
  const server = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'server'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve) => createInterface({ input: server.stdout }).once('line', resolve));
  const body = JSON.stringify({
    model: 'm',
    messages: [
      { role: 'system', content: 'Grade the answer. Reply as JSON.' },
      { role: 'user', content: 'OUTPUT: answer 1\nEXPECTED: answer 1' },
    ],
    response_format: { type: 'json_object' },
  });
  const u = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const viaHttp = () =>
    new Promise<unknown>((resolve, reject) => {
      const req = http.request(
        { host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', authorization: 'Bearer sk-x', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => resolve(JSON.parse(text)));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const longLived = new AbortController();
  const viaFetch = async (withSignals: boolean) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-x' },
      body,
      ...(withSignals ? { signal: AbortSignal.any([longLived.signal, AbortSignal.timeout(60_000)]) } : {}),
    });
    return JSON.parse(await res.text()) as unknown;
  };
  const undiciAgent = new UndiciAgent({ keepAliveTimeout: 4_000 });
  const viaUndici = async () => {
    const res = await undiciRequest(url, { dispatcher: undiciAgent, method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer sk-x' }, body });
    return JSON.parse(await res.body.text()) as unknown;
  };
  const provider = providerSchema.parse({ base_url: url.replace(/\/chat\/completions$/, ''), api_key: 'sk-x', timeout_ms: 60_000 });
  const chat = JSON.parse(body) as { model: string; messages: { role: string; content: string }[] };
  const viaClient = async () => {
    const out = await callChatCompletions(provider, { model: chat.model, messages: chat.messages, responseFormat: { type: 'json_object' } }, longLived.signal);
    if (out.kind !== 'answer') throw new Error(`unexpected outcome ${JSON.stringify(out)}`);
    return out;
  };
  const only = process.argv[4]?.split(',');
  const modes = (
    [
      ['node:http + keep-alive Agent', viaHttp],
      ['undici request + Agent', viaUndici],
      ['callChatCompletions (undici)', viaClient],
      ['fetch', () => viaFetch(false)],
      ['fetch + AbortSignal.any/timeout', () => viaFetch(true)],
    ] as [string, () => Promise<unknown>][]
  ).filter(([name]) => !only || only.some((o) => name.startsWith(o)));
  try {
    for (const round of [1, 2]) {
      for (const [name, one] of modes) {
        for (let i = 0; i < 200; i++) await one(); // warm-up
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        let next = 0;
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (next++ < n) await one();
          }),
        );
        const wall = performance.now() - t0;
        const cpu = process.cpuUsage(c0);
        console.log(`round ${round} ${name.padEnd(32)} ${((cpu.user + cpu.system) / n).toFixed(0).padStart(5)} µs client CPU/request, ${((n / wall) * 1000).toFixed(0).padStart(5)} req/s`);
      }
    }
  } finally {
    server.kill('SIGTERM');
    agent.destroy();
    await undiciAgent.close();
  }
}
