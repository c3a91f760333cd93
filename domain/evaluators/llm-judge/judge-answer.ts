/**
 * What we ask the judge for, and a tolerant reading of what it says: code
 * fences and prose around the JSON are ignored; anything else (no JSON, a
 * score out of range, an unknown label) is an unparsable answer.
 */
import type { LlmJudgeConfig } from './llm-judge.schema.ts';

export type Output = LlmJudgeConfig['output'];

/** The instruction appended to the messages, and the JSON schema for providers with structured outputs. */
export function answerSpec(output: Output): { instruction: string; schema: Record<string, unknown> } {
  switch (output.kind) {
    case 'numeric':
      return {
        instruction: `Respond with only a JSON object: {"score": <a number from ${output.min} to ${output.max}>, "reasoning": "<one or two sentences>"}`,
        schema: {
          type: 'object',
          properties: { score: { type: 'number', minimum: output.min, maximum: output.max }, reasoning: { type: 'string' } },
          required: ['score', 'reasoning'],
          additionalProperties: false,
        },
      };
    case 'boolean':
      return {
        instruction: 'Respond with only a JSON object: {"score": <true or false>, "reasoning": "<one or two sentences>"}',
        schema: { type: 'object', properties: { score: { type: 'boolean' }, reasoning: { type: 'string' } }, required: ['score', 'reasoning'], additionalProperties: false },
      };
    case 'categorical': {
      const labels = Object.keys(output.choices);
      return {
        instruction: `Respond with only a JSON object: {"label": <one of ${labels.map((l) => JSON.stringify(l)).join(', ')}>, "reasoning": "<one or two sentences>"}`,
        schema: {
          type: 'object',
          properties: { label: { type: 'string', enum: labels }, reasoning: { type: 'string' } },
          required: ['label', 'reasoning'],
          additionalProperties: false,
        },
      };
    }
  }
}

export type Parsed = { ok: true; score: number; reasoning: string } | { ok: false; problem: string };

function extractJsonObject(text: string): unknown {
  const unfenced = text.replace(/```(?:json)?\s*([\s\S]*?)```/i, '$1').trim();
  try {
    return JSON.parse(unfenced);
  } catch {
    const start = unfenced.indexOf('{');
    const end = unfenced.lastIndexOf('}');
    if (start >= 0 && end > start) {
      try {
        return JSON.parse(unfenced.slice(start, end + 1));
      } catch {
        return undefined;
      }
    }
    return undefined;
  }
}

/** Reads the judge's answer into a score in [0, 1]. */
export function parseAnswer(text: string, output: Output): Parsed {
  const obj = extractJsonObject(text);
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return { ok: false, problem: 'no JSON object in the answer' };
  const o = obj as Record<string, unknown>;
  const reasoning = typeof o.reasoning === 'string' ? o.reasoning : typeof o.reason === 'string' ? o.reason : '';
  switch (output.kind) {
    case 'numeric': {
      const raw = typeof o.score === 'string' && o.score.trim() !== '' ? Number(o.score) : o.score;
      if (typeof raw !== 'number' || !Number.isFinite(raw)) return { ok: false, problem: 'score is not a number' };
      if (raw < output.min || raw > output.max) return { ok: false, problem: `score ${raw} is outside [${output.min}, ${output.max}]` };
      return { ok: true, score: (raw - output.min) / (output.max - output.min), reasoning };
    }
    case 'boolean': {
      const v = typeof o.score === 'string' ? o.score.trim().toLowerCase() : o.score;
      if (v === true || v === 'true' || v === 'yes' || v === 'pass') return { ok: true, score: 1, reasoning };
      if (v === false || v === 'false' || v === 'no' || v === 'fail') return { ok: true, score: 0, reasoning };
      return { ok: false, problem: 'score is not true or false' };
    }
    case 'categorical': {
      if (typeof o.label !== 'string') return { ok: false, problem: 'label is missing' };
      const wanted = o.label.trim().toLowerCase();
      const hit = Object.entries(output.choices).find(([label]) => label.toLowerCase() === wanted);
      if (!hit) return { ok: false, problem: `label "${o.label.slice(0, 50)}" is not one of the choices` };
      return { ok: true, score: hit[1], reasoning };
    }
  }
}
