/**
 * A fake OpenAI-compatible provider: a real local HTTP server whose behaviour
 * each test sets (latency, a share of 429s with Retry-After, 5xx bursts,
 * hangs, malformed or off-schema answers, 401). It judges by comparing the
 * `OUTPUT:` and `EXPECTED:` lines of the last message (10 when equal, 2 when
 * not, on a 0–10 scale) and counts what it saw, including concurrency.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** An llm_judge config for the fake as provider "fake": it reads the OUTPUT and EXPECTED lines (10/10 when equal, else 2/10), passes at 0.5. */
export const FAKE_JUDGE = {
  type: 'llm_judge',
  provider: 'fake',
  model: 'judge-1',
  messages: [{ role: 'user', content: 'OUTPUT: {{output}}\nEXPECTED: {{expected_output}}' }],
  output: { kind: 'numeric', min: 0, max: 10 },
  pass_threshold: 0.5,
};

export interface FakeBehavior {
  latencyMs: number;
  /** share of requests answered 429 (deterministic: by request number) */
  rate429: number;
  retryAfterSeconds: number;
  /** the next N requests answer 500 */
  fail5xxNext: number;
  /** the next N requests never answer */
  hangNext: number;
  answer: 'ok' | 'garbage' | 'wrong_schema' | 'malformed_json' | 'fenced';
  unauthorized: boolean;
  /** What a generation request (one without the judge's instruction) is answered: by default the last user message upper-cased. */
  generate: (prompt: string, model: string) => string;
}

export interface FakeStats {
  requests: number;
  ok: number;
  status429: number;
  status5xx: number;
  status401: number;
  hung: number;
  inFlight: number;
  maxInFlight: number;
  promptTokens: number;
  completionTokens: number;
  authorization: Set<string>;
  /** when each request arrived, and what it was answered */
  log: { at: number; status: number; kind?: 'judge' | 'generate'; prompt?: string; model?: string }[];
  /** the requests `hangNext` left unanswered (they never reach `log`), with what they asked */
  hungLog: { at: number; kind: 'judge' | 'generate'; prompt: string; model?: string }[];
}

export interface FakeLlm {
  url: string;
  behavior: FakeBehavior;
  stats: FakeStats;
  reset(b?: Partial<FakeBehavior>): void;
  close(): Promise<void>;
}

const DEFAULTS: FakeBehavior = {
  latencyMs: 0,
  rate429: 0,
  retryAfterSeconds: 0,
  fail5xxNext: 0,
  hangNext: 0,
  answer: 'ok',
  unauthorized: false,
  generate: (prompt) => prompt.toUpperCase(),
};

/** The text of a message's content (a string, or content parts). */
const textOf = (content: unknown): string =>
  typeof content === 'string' ? content : Array.isArray(content) ? content.map((p) => (p as { text?: string }).text ?? '').join('') : '';

function freshStats(): FakeStats {
  return { requests: 0, ok: 0, status429: 0, status5xx: 0, status401: 0, hung: 0, inFlight: 0, maxInFlight: 0, promptTokens: 0, completionTokens: 0, authorization: new Set(), log: [], hungLog: [] };
}

export async function startFakeLlm(initial: Partial<FakeBehavior> = {}): Promise<FakeLlm> {
  const fake = { behavior: { ...DEFAULTS, ...initial }, stats: freshStats() } as FakeLlm;
  const hanging = new Set<ServerResponse>();

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const b = fake.behavior;
    const s = fake.stats;
    s.requests++;
    const n = s.requests;
    s.inFlight++;
    s.maxInFlight = Math.max(s.maxInFlight, s.inFlight);
    let body = '';
    for await (const chunk of req) body += chunk;
    if (req.headers.authorization) s.authorization.add(req.headers.authorization);
    const arrivedAt = Date.now();
    let request: { model?: string; messages?: { role: string; content: unknown }[] } = {};
    try {
      request = JSON.parse(body) as typeof request;
    } catch {
      // answered below like any request; the log just has no prompt
    }
    const lastUser = [...(request.messages ?? [])].reverse().find((m) => m.role === 'user');
    // judge requests carry the judge's instruction, or (the provider-client tests) the OUTPUT:/EXPECTED: lines it compares
    const judging =
      (request.messages ?? []).some((m) => m.role === 'system' && textOf(m.content).includes('Respond with only a JSON object')) ||
      textOf(lastUser?.content).includes('OUTPUT:');
    const entry = { kind: judging ? ('judge' as const) : ('generate' as const), prompt: textOf(lastUser?.content), model: request.model };
    const done = (status: number, payload: string, headers: Record<string, string> = {}) => {
      s.inFlight--;
      s.log.push({ at: arrivedAt, status, ...entry });
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(payload);
    };
    if (b.latencyMs > 0) await new Promise((r) => setTimeout(r, b.latencyMs));
    if (b.hangNext > 0) {
      b.hangNext--;
      s.hung++;
      s.hungLog.push({ at: arrivedAt, ...entry });
      hanging.add(res);
      res.on('close', () => {
        if (hanging.delete(res)) s.inFlight--;
      });
      return;
    }
    if (b.unauthorized) {
      s.status401++;
      return done(401, JSON.stringify({ error: { message: 'Incorrect API key provided', type: 'invalid_request_error' } }));
    }
    if (b.fail5xxNext > 0) {
      b.fail5xxNext--;
      s.status5xx++;
      return done(500, JSON.stringify({ error: { message: 'upstream exploded' } }));
    }
    if (b.rate429 > 0 && (n % 100) < b.rate429 * 100) {
      s.status429++;
      return done(429, JSON.stringify({ error: { message: 'Rate limit reached' } }), { 'retry-after': String(b.retryAfterSeconds) });
    }
    const parsed = JSON.parse(body) as { model: string; messages: { role: string; content: string }[] };
    if (!judging && b.answer === 'ok') {
      const text = b.generate(entry.prompt, parsed.model);
      const promptTokens = Math.ceil(entry.prompt.length / 4) + 1;
      s.ok++;
      s.promptTokens += promptTokens;
      s.completionTokens += 7;
      return done(200, JSON.stringify({ id: `chatcmpl-${n}`, object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }], usage: { prompt_tokens: promptTokens, completion_tokens: 7, total_tokens: promptTokens + 7 } }));
    }
    const last = [...parsed.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
    const output = /OUTPUT: (.*)/.exec(last)?.[1];
    const expected = /EXPECTED: (.*)/.exec(last)?.[1];
    const score = output !== undefined && output === expected ? 10 : 2;
    const promptTokens = Math.ceil(parsed.messages.reduce((a, m) => a + m.content.length, 0) / 4);
    const completionTokens = 12;
    let content: string;
    const wantsBoolean = parsed.messages.some((m) => m.role === 'system' && m.content.includes('<true or false>'));
    const verdict = wantsBoolean ? score === 10 : score;
    switch (b.answer) {
      case 'ok':
        content = JSON.stringify({ score: verdict, reasoning: score === 10 ? 'matches the expected answer' : 'differs from the expected answer' });
        break;
      case 'fenced':
        content = `Sure! Here is my verdict:\n\`\`\`json\n${JSON.stringify({ score, reasoning: 'fenced' })}\n\`\`\``;
        break;
      case 'garbage':
        content = 'I think this answer is pretty good, maybe a seven out of ten?';
        break;
      case 'wrong_schema':
        content = JSON.stringify({ score: 42, reasoning: 'out of range' });
        break;
      case 'malformed_json':
        s.inFlight--;
        s.ok++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"choices": [ {"message": ');
        return;
    }
    s.ok++;
    s.promptTokens += promptTokens;
    s.completionTokens += completionTokens;
    done(200, JSON.stringify({ id: `chatcmpl-${n}`, object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }], usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens } }));
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      fake.stats.inFlight--;
      res.writeHead(500).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  fake.reset = (b = {}) => {
    fake.behavior = { ...DEFAULTS, ...b };
    fake.stats = freshStats();
  };
  fake.close = async () => {
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return fake;
}
