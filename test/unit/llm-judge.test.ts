import { describe, expect, it } from 'vitest';
import { parseAnswer } from '../../domain/evaluators/llm-judge/judge-answer.ts';
import { llmJudgeConfigSchema } from '../../domain/evaluators/llm-judge/llm-judge.schema.ts';
import { parseRetryAfter } from '../../domain/evaluators/llm-judge/provider-client.ts';
import { renderTemplate } from '../../domain/evaluators/llm-judge/template.ts';

describe('judge answers', () => {
  const numeric = { kind: 'numeric', min: 1, max: 5 } as const;
  it('normalises numeric scores and reads them out of fences and prose', () => {
    expect(parseAnswer('{"score": 5, "reasoning": "great"}', numeric)).toEqual({ ok: true, score: 1, reasoning: 'great' });
    expect(parseAnswer('Verdict:\n```json\n{"score": 3, "reasoning": "ok"}\n```\nthanks', numeric)).toEqual({ ok: true, score: 0.5, reasoning: 'ok' });
    expect(parseAnswer('blah {"score": "2", "reasoning": "meh"} blah', numeric)).toEqual({ ok: true, score: 0.25, reasoning: 'meh' });
    expect(parseAnswer('{"score": 6}', numeric)).toEqual({ ok: false, problem: 'score 6 is outside [1, 5]' });
    expect(parseAnswer('seven', numeric)).toMatchObject({ ok: false });
    expect(parseAnswer('[1,2]', numeric)).toMatchObject({ ok: false });
  });
  it('reads booleans and categorical labels', () => {
    expect(parseAnswer('{"score": true}', { kind: 'boolean' })).toMatchObject({ ok: true, score: 1 });
    expect(parseAnswer('{"score": "no"}', { kind: 'boolean' })).toMatchObject({ ok: true, score: 0 });
    expect(parseAnswer('{"score": 1}', { kind: 'boolean' })).toMatchObject({ ok: false });
    const cat = { kind: 'categorical', choices: { good: 1, partial: 0.5, bad: 0 } } as const;
    expect(parseAnswer('{"label": "Partial", "reasoning": "half"}', cat)).toEqual({ ok: true, score: 0.5, reasoning: 'half' });
    expect(parseAnswer('{"label": "awful"}', cat)).toMatchObject({ ok: false, problem: expect.stringMatching(/not one of the choices/) });
  });
});

describe('templates', () => {
  it('renders strings as they are and other JSON as JSON, metadata by path', () => {
    const item = { input: { q: 'hi' }, output: 'out', expected_output: 42, metadata: { a: { b: ['x'] }, s: 'plain' } };
    expect(renderTemplate('{{input}}|{{ output }}|{{expected_output}}|{{metadata.a.b}}|{{metadata.s}}|{{metadata.none}}|{{other}}', item)).toBe(
      '{"q":"hi"}|out|42|["x"]|plain||{{other}}',
    );
  });
});

describe('config', () => {
  it('validates output kinds and defaults pass_threshold', () => {
    const base = { type: 'llm_judge', provider: 'p', model: 'm', messages: [{ role: 'user', content: 'x' }] };
    expect(llmJudgeConfigSchema.parse({ ...base, output: { kind: 'boolean' } }).pass_threshold).toBe(0.5);
    expect(llmJudgeConfigSchema.safeParse({ ...base, output: { kind: 'numeric', min: 3, max: 3 } }).success).toBe(false);
    expect(llmJudgeConfigSchema.safeParse({ ...base, output: { kind: 'categorical', choices: { only: 1 } } }).success).toBe(false);
    expect(llmJudgeConfigSchema.safeParse({ ...base, output: { kind: 'boolean' }, api_key: 'sk' }).success).toBe(false);
  });
  it('reads Retry-After as seconds or a date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter(new Date(Date.now() + 10_000).toUTCString())).toBeGreaterThan(8_000);
    expect(parseRetryAfter('soon')).toBeNull();
  });
});
