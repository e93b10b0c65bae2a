import { createHash } from 'node:crypto';
import { contentText } from './messages';
import type { ChunkChoice, Upstream, UpstreamEvent, UpstreamRequest } from './upstream';

/** First line of every demo answer, so nobody mistakes it for a real model. */
export const DEMO_NOTICE = '> **Demo model** — simulated output from the Clearance gateway; no real model was called.';

const OPENINGS = [
  'Here is a structured look at {topic}.',
  'Good question. Let me break down {topic} step by step.',
  'Below is a concise overview of {topic}, followed by a worked example.',
  'There are a few angles worth separating when thinking about {topic}.',
];
const POINTS = [
  '**Scope the question.** State what is being measured and what would change your mind.',
  '**Check the assumptions.** Most surprises come from an input that was never written down.',
  '**Prefer small experiments.** A quick ablation often settles what a long debate cannot.',
  '**Track provenance.** Record which data, code and model version produced each result.',
  '**Quantify uncertainty.** Report intervals, not just point estimates.',
  '**Look for confounders.** Correlated inputs can masquerade as causes.',
  '**Write it down.** A short design note saves a long meeting later.',
];
const CLOSINGS = [
  'If you share more detail about your setup, I can tailor the next steps.',
  'Happy to go deeper on any of these points.',
  'Let me know which part you would like to expand.',
];

/**
 * Writes a plausible markdown answer about the last user message; deterministic per prompt
 * (choice `index` > 0 of `n` gets its own variant).
 */
export function demoAnswer(request: Pick<UpstreamRequest, 'model' | 'messages'>, index = 0): string {
  const last = [...request.messages].reverse().find((message) => message.role === 'user');
  const prompt = last ? contentText(last.content) : '';
  const words = prompt.replace(/\s+/g, ' ').trim().split(' ').filter(Boolean);
  const topic = words.length > 0 ? `"${words.slice(0, 8).join(' ')}${words.length > 8 ? '…' : ''}"` : 'your question';
  const seed = createHash('sha256')
    .update(`${request.model.id}\0${prompt}${index > 0 ? `\0${index}` : ''}`)
    .digest();
  const pick = <T>(items: readonly T[], index: number): T => items[(seed[index] ?? 0) % items.length] as T;
  const points = [0, 1, 2, 3].map((offset) => POINTS[((seed[4] ?? 0) + offset * 2) % POINTS.length] as string);
  return [
    DEMO_NOTICE,
    '',
    `## ${request.model.name} on ${topic}`,
    '',
    pick(OPENINGS, 1).replace('{topic}', topic),
    '',
    ...points.map((point, index) => `${index + 1}. ${point}`),
    '',
    'A minimal sketch of the bookkeeping:',
    '',
    '```python',
    'def run(experiment, seeds=(0, 1, 2)):',
    '    results = [experiment(seed=s) for s in seeds]',
    '    mean = sum(results) / len(results)',
    '    return {"mean": mean, "runs": results}',
    '```',
    '',
    '| step | purpose |',
    '|---|---|',
    '| baseline | know where you start |',
    '| ablation | learn what matters |',
    '',
    pick(CLOSINGS, 2),
  ].join('\n');
}

/** Splits text into word-sized tokens that concatenate back to the original. */
export function demoTokens(text: string): string[] {
  return text.match(/\s*\S+|\s+/g) ?? [];
}

/** The demo's token count of a request's messages (word-sized tokens, as `demoTokens` splits them). */
export function demoPromptTokens(request: Pick<UpstreamRequest, 'messages'>): number {
  return request.messages.reduce((sum, message) => sum + demoTokens(contentText(message.content)).length, 0);
}

/** `text` cut before the first of the `stop` sequences, and whether one was found. */
function applyStop(text: string, stop: unknown): { text: string; stopped: boolean } {
  const sequences = (typeof stop === 'string' ? [stop] : Array.isArray(stop) ? stop : []).filter(
    (sequence): sequence is string => typeof sequence === 'string' && sequence.length > 0,
  );
  let end = text.length;
  for (const sequence of sequences) {
    const at = text.indexOf(sequence);
    if (at !== -1 && at < end) end = at;
  }
  return { text: text.slice(0, end), stopped: end < text.length };
}

/**
 * The built-in demo model: streams `demoAnswer` at `tokensPerSecond` for each of `n` choices,
 * honours `stop` and the token limit, and reports usage counted in its word-sized tokens.
 *
 * Tokens are released on a 25 ms tick so high rates do not mean one timer per token.
 */
export class DemoUpstream implements Upstream {
  constructor(private readonly tokensPerSecond: number) {
    if (!(tokensPerSecond > 0)) throw new Error(`demo tokens per second must be positive, got ${tokensPerSecond}`);
  }

  async *stream(request: UpstreamRequest, signal: AbortSignal): AsyncIterable<UpstreamEvent> {
    const n = typeof request.params.n === 'number' ? request.params.n : 1;
    const limitParam = request.params.max_completion_tokens ?? request.params.max_tokens;
    const limit = typeof limitParam === 'number' ? limitParam : Number.POSITIVE_INFINITY;
    const choices = Array.from({ length: n }, (_, index) => {
      const { text, stopped } = applyStop(demoAnswer(request, index), request.params.stop);
      return { tokens: demoTokens(text), stopped, sent: 0, done: false };
    });
    const started = performance.now();
    let completionTokens = 0;
    yield {
      type: 'choices',
      choices: choices.map((_, index) => ({ index, delta: { role: 'assistant', content: '' }, finish_reason: null })),
    };
    while (choices.some((choice) => !choice.done)) {
      const due = Math.floor(((performance.now() - started) / 1000) * this.tokensPerSecond) + 1;
      const out: ChunkChoice[] = [];
      const ended: ChunkChoice[] = [];
      for (const [index, choice] of choices.entries()) {
        if (choice.done) continue;
        const upTo = Math.min(choice.tokens.length, limit, due);
        if (upTo > choice.sent) {
          out.push({ index, delta: { content: choice.tokens.slice(choice.sent, upTo).join('') }, finish_reason: null });
          completionTokens += upTo - choice.sent;
          choice.sent = upTo;
        }
        if (choice.sent >= choice.tokens.length || choice.sent >= limit) {
          choice.done = true;
          ended.push({ index, delta: {}, finish_reason: choice.sent < choice.tokens.length ? 'length' : 'stop' });
        }
      }
      // Like OpenAI: text first, each finish reason in a chunk of its own with an empty delta.
      if (out.length > 0) yield { type: 'choices', choices: out };
      if (ended.length > 0) yield { type: 'choices', choices: ended };
      if (out.length > 0 || ended.length > 0) continue;
      await sleep(Math.min(25, 1000 / this.tokensPerSecond), signal);
    }
    const promptTokens = demoPromptTokens(request);
    yield {
      type: 'usage',
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
      },
    };
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
