import { createHash } from 'node:crypto';
import type { Upstream, UpstreamEvent, UpstreamRequest } from './upstream';

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

/** Writes a plausible markdown answer about the last user message; deterministic per prompt. */
export function demoAnswer(request: UpstreamRequest): string {
  const prompt = [...request.messages].reverse().find((message) => message.role === 'user')?.content ?? '';
  const words = prompt.replace(/\s+/g, ' ').trim().split(' ').filter(Boolean);
  const topic = words.length > 0 ? `"${words.slice(0, 8).join(' ')}${words.length > 8 ? '…' : ''}"` : 'your question';
  const seed = createHash('sha256').update(`${request.model.id}\0${prompt}`).digest();
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

/**
 * The built-in demo model: streams `demoAnswer` at `tokensPerSecond`.
 *
 * Tokens are released on a 25 ms tick so high rates do not mean one timer per token.
 */
export class DemoUpstream implements Upstream {
  constructor(private readonly tokensPerSecond: number) {
    if (!(tokensPerSecond > 0)) throw new Error(`demo tokens per second must be positive, got ${tokensPerSecond}`);
  }

  async *stream(request: UpstreamRequest, signal: AbortSignal): AsyncIterable<UpstreamEvent> {
    const tokens = demoTokens(demoAnswer(request));
    const limit = request.maxTokens ?? Number.POSITIVE_INFINITY;
    const started = performance.now();
    let sent = 0;
    while (sent < tokens.length) {
      if (sent >= limit) {
        yield { type: 'finish', reason: 'length' };
        return;
      }
      const due = Math.min(
        tokens.length,
        limit,
        Math.floor(((performance.now() - started) / 1000) * this.tokensPerSecond) + 1,
      );
      if (due > sent) {
        yield { type: 'delta', text: tokens.slice(sent, due).join('') };
        sent = due;
        continue;
      }
      await sleep(Math.min(25, 1000 / this.tokensPerSecond), signal);
    }
    yield { type: 'finish', reason: 'stop' };
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
