import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ProblemDetails } from '../../shared/problem';
import { AccessService, type ActiveSession } from '../access';
import type { RequestAuthenticator } from '../auth/request-auth';
import { Catalog, type CatalogFile } from '../catalog';
import { EventHub } from '../events/hub';
import { problem, ProblemError, sendProblem } from '../http/problems';
import { currentRequest, observeRequest, type RequestObservation } from '../observability/context';
import type { DecisionRequest, PolicyDecision, PolicyEngine, PolicyInfo } from '../policy/engine';
import { MemoryAuditLog } from '../testing/memory-audit';
import type { EntitlementVersions } from '../store/entitlement-versions';
import { registerCompletionsRoute, streamErrorPayload } from './completions-route';
import { UpstreamError, type Upstream, type UpstreamEvent, type UpstreamRequest } from './upstream';

/**
 * The completions route in a minimal Fastify app of its own: a scripted authenticator, the real
 * access service (scripted policy decisions, in-memory audit), and scripted upstreams in process,
 * so each decision of the route is driven directly and its refusals can prove nothing ran.
 */

/** Scripted upstreams by model id; other models get the real upstream. */
const scripted = vi.hoisted(() => ({ upstreams: new Map<string, unknown>(), picked: [] as string[] }));

vi.mock('./upstreams', async (importOriginal) => {
  const actual = await importOriginal<typeof import('./upstreams')>();
  return {
    ...actual,
    upstreamFor: (model: { id: string }, settings: Parameters<typeof actual.upstreamFor>[1]) => {
      scripted.picked.push(model.id);
      return (scripted.upstreams.get(model.id) as Upstream | undefined) ?? actual.upstreamFor(model as never, settings);
    },
  };
});

type Item = UpstreamEvent | Error | 'end';

/** An upstream the test feeds one event at a time; it records each call and its abort signal. */
class ScriptedUpstream implements Upstream {
  readonly calls: { request: UpstreamRequest; signal: AbortSignal }[] = [];
  private readonly items: Item[] = [];
  private wake: (() => void) | undefined;
  /** How many events the route has asked for. */
  pulls = 0;

  constructor(items: Item[] = []) {
    this.items.push(...items);
  }

  send(...items: Item[]): void {
    this.items.push(...items);
    this.wake?.();
  }

  get signal(): AbortSignal {
    return this.calls.at(-1)!.signal;
  }

  async *stream(request: UpstreamRequest, signal: AbortSignal): AsyncIterable<UpstreamEvent> {
    this.calls.push({ request, signal });
    for (;;) {
      this.pulls++;
      while (this.items.length === 0) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          signal.addEventListener('abort', () => resolve(), { once: true });
        });
        if (signal.aborted) throw signal.reason;
      }
      const item = this.items.shift()!;
      if (item === 'end') return;
      if (item instanceof Error) throw item;
      yield item;
    }
  }
}

const text = (content: string, index = 0, finish: 'stop' | null = null): UpstreamEvent => ({
  type: 'choices',
  choices: [{ index, delta: { content }, finish_reason: finish }],
});

class ScriptedEngine {
  revision = 1;
  namesUsers = false;
  policies: PolicyInfo[] = [];
  rule: (request: DecisionRequest) => Partial<PolicyDecision> = () => ({ effect: 'allow' });

  decide(request: DecisionRequest): PolicyDecision {
    return {
      effect: 'allow',
      annotations: {},
      determining: [],
      errors: [],
      policyRevision: this.revision,
      cached: false,
      ...this.rule(request),
    };
  }
}

const versions: EntitlementVersions = { versionFor: async () => 1, current: async () => 0 };

const attributes = {
  exportControlled: false,
  suspended: false,
  requiredGroups: [],
  requiresHardware: false,
  requiresCompliantDevice: false,
};

const catalogFile: CatalogFile = {
  models: [
    {
      id: 'alpha',
      name: 'Alpha',
      upstream: { kind: 'openai', baseUrl: 'http://127.0.0.1:9/v1', model: 'a' },
      attributes,
    },
    { id: 'secret', name: 'Secret', visibility: 'hidden-when-denied', upstream: { kind: 'demo' }, attributes },
    {
      id: 'unkeyed',
      name: 'Unkeyed',
      upstream: { kind: 'openai', baseUrl: 'http://127.0.0.1:9/v1', model: 'u', apiKeyEnv: 'CLEARANCE_TEST_UNSET_KEY' },
      attributes,
    },
    {
      id: 'narrow',
      name: 'Narrow',
      upstream: { kind: 'openai', baseUrl: 'http://127.0.0.1:9/v1', model: 'n' },
      parameters: ['max_tokens'],
      attributes,
    },
  ],
};

const denyExport: Partial<PolicyDecision> = {
  effect: 'deny',
  reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
  policy: 'ec-us',
  determining: ['ec-us'],
  annotations: { message: '{model} needs a US person.' },
};

function sessionOf(userId: string): ActiveSession {
  return {
    sessionId: `session-${userId}`,
    userId,
    jkt: `jkt-${userId}`,
    identity: { username: `${userId}@example.test`, groups: [] },
    principal: { groups: [], usPerson: true, verificationPending: false },
    device: { id: `device-${userId}`, assurance: 'software', compliant: true, failedChecks: [] },
    expiresAt: Math.floor(Date.now() / 1000) + 600,
  };
}

const MAX_EVENT_BYTES = 8;
/** The non-streamed answer limit: 32 events' worth. */
const ANSWER_LIMIT = MAX_EVENT_BYTES * 32;

let app: FastifyInstance;
let base: string;
let engine: ScriptedEngine;
let audit: MemoryAuditLog;
let events: EventHub;
let access: AccessService;
const logs: string[] = [];
const observations = new Map<string, RequestObservation>();
/** The raw response of each observed request, by request id. */
const responses = new Map<string, ServerResponse>();
let nextId = 0;

beforeAll(async () => {
  engine = new ScriptedEngine();
  audit = new MemoryAuditLog();
  events = new EventHub();
  const catalog = Catalog.fromJson(catalogFile);
  access = new AccessService(
    engine as unknown as PolicyEngine,
    () => catalog,
    audit,
    versions,
    events,
    () => {},
  );
  const sessions = new Map([
    ['DPoP ana', sessionOf('ana')],
    ['DPoP bob', sessionOf('bob')],
    ['DPoP carol', sessionOf('carol')],
  ]);
  const auth = {
    sessionFromDpop: async (request: { headers: IncomingMessage['headers'] }) => {
      const session = sessions.get(request.headers.authorization ?? '');
      if (!session) throw new ProblemError(problem('unauthorized', 401, 'Unauthorized', 'Who are you?'));
      return { session };
    },
  } as unknown as RequestAuthenticator;
  const server = createServer();
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  app = Fastify({
    logger: false,
    forceCloseConnections: true,
    requestIdHeader: false,
    genReqId: () => currentRequest()?.requestId ?? `plain-${++nextId}`,
    serverFactory: (h) => {
      handler = h;
      return server as Server;
    },
  });
  // As the gateway does: each request observed, unless the test asks for a request without one.
  server.on('request', (req: IncomingMessage, res) => {
    if (req.headers['x-unobserved']) return handler!(req, res);
    const id = `req-${++nextId}`;
    observeRequest(id, () => {
      observations.set(id, currentRequest()!);
      responses.set(id, res);
      handler!(req, res);
    });
  });
  app.setErrorHandler(async (error: FastifyError, _request, reply) => {
    if (error instanceof ProblemError) return sendProblem(reply, error.problem, error.headers);
    return reply.code(599).send({ unexpected: error.message });
  });
  registerCompletionsRoute(app, {
    auth,
    access,
    catalog: () => catalog,
    upstreams: {
      demoTokensPerSecond: 1000,
      transport: {
        timeouts: { responseMs: 1000, idleMs: 1000 },
        maxEventBytes: MAX_EVENT_BYTES,
        dispatcher: undefined as never,
      },
      env: {},
    },
    log: (line) => logs.push(line),
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
});

afterAll(async () => {
  await app?.close();
});

afterEach(() => {
  scripted.upstreams.clear();
  scripted.picked.length = 0;
  audit.entries.length = 0;
  audit.failing.clear();
  engine.rule = () => ({ effect: 'allow' });
  logs.length = 0;
});

function upstream(model: string, items: Item[] = []): ScriptedUpstream {
  const scriptedUpstream = new ScriptedUpstream(items);
  scripted.upstreams.set(model, scriptedUpstream);
  return scriptedUpstream;
}

function post(body: unknown, options: { user?: string; headers?: Record<string, string>; signal?: AbortSignal } = {}) {
  return fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(options.user === '' ? {} : { authorization: `DPoP ${options.user ?? 'ana'}` }),
      ...options.headers,
    },
    body: JSON.stringify(body),
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

const ask = (model: string, extra: Record<string, unknown> = {}) => ({
  model,
  messages: [{ role: 'user', content: 'hi' }],
  ...extra,
});

/** Reads an event stream to its end: each event's name (if any) and data. */
async function readEvents(response: Response): Promise<{ event?: string; data: string }[]> {
  const body = await response.text();
  return body
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const lines = block.split('\n');
      const event = lines.find((line) => line.startsWith('event: '))?.slice(7);
      const data = lines
        .filter((line) => line.startsWith('data: '))
        .map((line) => line.slice(6))
        .join('\n');
      return event === undefined ? { data } : { event, data };
    });
}

/** Waits until `value` stops changing (the route is waiting for something). */
async function steady(value: () => number): Promise<number> {
  let last = value();
  for (let same = 0; same < 5;) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    const now = value();
    same = now === last ? same + 1 : 0;
    last = now;
  }
  return last;
}

async function settle(condition: () => boolean, rounds = 200): Promise<void> {
  for (let round = 0; round < rounds && !condition(); round++) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** The raw response of the request the access record at `index` was made for. */
function responseOf(index = 0): ServerResponse {
  return responses.get(audit.of('access')[index]!.requestId as string)!;
}

const reasonOf = (signal: AbortSignal) => (signal.reason as Error).message;

describe('refusals: nothing reaches the model', () => {
  it('an unauthenticated caller gets the 401 and nothing is decided, audited or called', async () => {
    const model = upstream('alpha', [text('x'), 'end']);
    const response = await post(ask('alpha'), { user: 'mallory' });
    expect(response.status).toBe(401);
    expect(((await response.json()) as ProblemDetails).type).toBe('urn:clearance:problem:unauthorized');
    expect(model.calls).toEqual([]);
    expect(audit.entries).toEqual([]);
  });

  it('a malformed body is a 400 before any decision or audit', async () => {
    const model = upstream('alpha', [text('x'), 'end']);
    const response = await post({ model: 'alpha', messages: [] });
    expect(response.status).toBe(400);
    expect(((await response.json()) as ProblemDetails).type).toBe('urn:clearance:problem:bad-request');
    expect(model.calls).toEqual([]);
    expect(audit.entries).toEqual([]);
  });

  it('an unknown model is a 404 whose decision id is its audit record', async () => {
    const response = await post(ask('nonexistent'));
    expect(response.status).toBe(404);
    const body = (await response.json()) as ProblemDetails;
    expect(body).toMatchObject({
      type: 'urn:clearance:problem:model-not-found',
      title: 'Model not found',
      detail: 'There is no model "nonexistent".',
      decisionId: 'dec_1',
    });
    expect(audit.entries).toHaveLength(1);
    expect(audit.entries[0]).toMatchObject({
      kind: 'access',
      subject: 'ana',
      data: { endpoint: 'chat.completions', model: 'nonexistent', effect: 'deny', policy: 'model-not-found' },
    });
    expect(audit.entries[0]!.data.requestId).toMatch(/^req-\d+$/);
    expect(scripted.picked).toEqual([]);
  });

  it('a denied model is the 403 with its reason code and rule, audited, and its parameters never checked', async () => {
    const model = upstream('narrow', [text('x'), 'end']);
    engine.rule = () => denyExport;
    // `temperature` is not one of narrow's parameters: an allowed caller would get a 400 naming it.
    const response = await post(ask('narrow', { temperature: 1, user: 'end-user-1' }));
    expect(response.status).toBe(403);
    const body = (await response.json()) as ProblemDetails;
    expect(body).toMatchObject({
      type: 'urn:clearance:problem:access-denied',
      status: 403,
      reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
      policy: 'ec-us',
      message: 'Narrow needs a US person.',
      decisionId: 'dec_1',
    });
    expect(model.calls).toEqual([]);
    expect(scripted.picked).toEqual([]);
    expect(audit.entries).toHaveLength(1);
    expect(audit.entries[0]!.data).toMatchObject({ model: 'narrow', effect: 'deny', endpoint: 'chat.completions' });
    expect(audit.entries[0]!.data.requestId).toMatch(/^req-\d+$/);
    // The end user is recorded only for a request that will run.
    expect(Object.keys(audit.entries[0]!.data)).not.toContain('endUser');
  });

  it('a hidden model is answered exactly like an unknown one, and its decision is still audited', async () => {
    engine.rule = () => denyExport;
    const response = await post(ask('secret'));
    expect(response.status).toBe(404);
    const body = (await response.json()) as ProblemDetails;
    expect(body).toMatchObject({
      type: 'urn:clearance:problem:model-not-found',
      detail: 'There is no model "secret".',
      decisionId: 'dec_1',
    });
    expect(body.reason).toBeUndefined();
    expect(audit.entries[0]!.data).toMatchObject({
      model: 'secret',
      effect: 'deny',
      reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
    });
    expect(scripted.picked).toEqual([]);
  });

  it('a request registers its session, so a policy change reaches that device afterwards', async () => {
    const stream: string[] = [];
    events.subscribe('carol', 'jkt-carol', { write: (text) => stream.push(text), close: () => {} });
    expect(await access.applyChange('before')).toMatchObject({ recomputed: 0 });
    engine.rule = () => denyExport;
    expect((await post(ask('alpha'), { user: 'carol' })).status).toBe(403);
    expect(await access.applyChange('after')).toMatchObject({ recomputed: 1, notified: 1 });
    expect(stream).toHaveLength(1);
  });

  it('an allowed caller with a parameter the model does not honour gets the 400 naming it, and no call', async () => {
    const model = upstream('narrow', [text('x'), 'end']);
    const response = await post(ask('narrow', { temperature: 1 }));
    expect(response.status).toBe(400);
    const body = (await response.json()) as ProblemDetails;
    expect(body.type).toBe('urn:clearance:problem:unsupported-parameter');
    expect(body.error?.param).toBe('temperature');
    expect(model.calls).toEqual([]);
    expect(audit.entries).toEqual([]);
  });
});

describe('an allowed completion, not streamed', () => {
  it('returns the accumulated answer with the decision id, audits the decision and how it ended', async () => {
    const model = upstream('alpha', [
      { type: 'choices', choices: [{ index: 1, delta: { role: 'assistant', content: 'B' }, finish_reason: null }] },
      { type: 'choices', choices: [{ index: 0, delta: { role: 'assistant', content: 'A' }, finish_reason: null }] },
      text('a', 0, 'stop'),
      { type: 'choices', choices: [{ index: 1, delta: { content: 'b' }, finish_reason: 'length' }] },
      { type: 'usage', usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } },
      'end',
    ]);
    const before = Math.floor(Date.now() / 1000);
    const response = await post(ask('alpha', { max_tokens: 5, user: 'end-user-1' }));
    const after = Math.floor(Date.now() / 1000);
    expect(response.status).toBe(200);
    expect(response.headers.get('x-clearance-decision-id')).toBe('dec_1');
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = (await response.json()) as { id: string; created: number };
    expect(body.id).toMatch(/^chatcmpl-[0-9a-f]{24}$/);
    expect(body.created).toBeGreaterThanOrEqual(before);
    expect(body.created).toBeLessThanOrEqual(after);
    expect(body).toEqual({
      id: body.id,
      object: 'chat.completion',
      created: body.created,
      model: 'alpha',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Aa', refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
        {
          index: 1,
          message: { role: 'assistant', content: 'Bb', refusal: null },
          logprobs: null,
          finish_reason: 'length',
        },
      ],
      usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
    });
    // What the upstream was asked: the catalog's model, the messages and only the parameters to pass on.
    expect(model.calls).toHaveLength(1);
    expect(model.calls[0]!.request.model.id).toBe('alpha');
    expect(model.calls[0]!.request.messages).toEqual([{ role: 'user', content: 'hi' }]);
    expect(model.calls[0]!.request.params).toEqual({ max_tokens: 5, user: 'end-user-1' });
    const decision = audit.of('access')[0]!;
    expect(decision).toMatchObject({
      model: 'alpha',
      effect: 'allow',
      endUser: 'end-user-1',
      endpoint: 'chat.completions',
    });
    const ended = await audit.waitFor('completion');
    expect(ended).toEqual({
      decisionId: 'dec_1',
      requestId: decision.requestId,
      model: 'alpha',
      outcome: 'complete',
      finishReasons: ['stop', 'length'],
      usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
      sessionId: 'session-ana',
    });
    expect(access.inFlightCount).toBe(0);
    // A completion that ran to its end is not aborted, also once the connection closes.
    await settle(() => model.signal.aborted, 10);
    expect(model.signal.aborted).toBe(false);
    // The upstream's first event was timed as a success.
    const observation = observations.get(decision.requestId as string)!;
    expect(observation.upstreamOutcome).toBe('ok');
    expect(typeof observation.phases.upstream).toBe('number');
  });

  it('builds tool calls, refusals and log probabilities from their deltas', async () => {
    upstream('alpha', [
      {
        type: 'choices',
        choices: [
          {
            index: 0,
            delta: {
              tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'look', arguments: '{"a"' } }],
            },
            finish_reason: null,
            logprobs: { content: [{ token: 'x' }], refusal: null },
          },
        ],
      },
      {
        type: 'choices',
        choices: [
          {
            index: 0,
            delta: {
              tool_calls: [{ index: 0, function: { name: 'up', arguments: ':1}' } }, { function: { name: 'two' } }],
            },
            finish_reason: null,
            logprobs: { content: [{ token: 'y' }] },
          },
          { index: 1, delta: { refusal: 'No' }, finish_reason: null, logprobs: { refusal: [{ token: 'N' }] } },
        ],
      },
      {
        type: 'choices',
        choices: [
          { index: 0, delta: {}, finish_reason: 'tool_calls' },
          { index: 1, delta: { refusal: 'pe' }, finish_reason: null, logprobs: { refusal: [{ token: 'p' }] } },
        ],
      },
      'end',
    ]);
    const response = await post(ask('alpha'));
    expect(response.status).toBe(200);
    const body = (await response.json()) as { choices: unknown[] };
    expect(body.choices).toEqual([
      {
        index: 0,
        message: {
          role: 'assistant',
          content: null,
          refusal: null,
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"a":1}' } },
            { type: 'function', function: { name: 'two', arguments: '' } },
          ],
        },
        logprobs: { content: [{ token: 'x' }, { token: 'y' }], refusal: null },
        finish_reason: 'tool_calls',
      },
      {
        index: 1,
        message: { role: 'assistant', content: '', refusal: 'Nope' },
        logprobs: { content: null, refusal: [{ token: 'N' }, { token: 'p' }] },
        finish_reason: 'stop',
      },
    ]);
    expect(((await audit.waitFor('completion')) as { finishReasons: string[] }).finishReasons).toEqual(['tool_calls']);
  });

  it('keeps a tool call type the upstream names, a role it sends, and a tool call id given after its start', async () => {
    upstream('alpha', [
      {
        type: 'choices',
        choices: [
          {
            index: 0,
            delta: { role: 'tool', tool_calls: [{ type: 'custom', function: { arguments: 'x' } }] },
            finish_reason: null,
          },
        ],
      },
      {
        type: 'choices',
        choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'late' }] }, finish_reason: null }],
      },
      {
        type: 'choices',
        choices: [
          { index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: 'y' } }] }, finish_reason: null },
        ],
      },
      'end',
    ]);
    const body = (await (await post(ask('alpha'))).json()) as { choices: unknown[] };
    expect(body.choices).toEqual([
      {
        index: 0,
        message: {
          role: 'tool',
          content: null,
          refusal: null,
          tool_calls: [{ id: 'late', type: 'custom', function: { name: '', arguments: 'xy' } }],
        },
        logprobs: null,
        finish_reason: 'stop',
      },
    ]);
  });

  it('keeps a finish reason that a later piece without one follows', async () => {
    upstream('alpha', [
      { type: 'choices', choices: [{ index: 0, delta: { content: 'a' }, finish_reason: 'length' }] },
      { type: 'choices', choices: [{ index: 0, delta: {}, finish_reason: null }] },
      'end',
    ]);
    const body = (await (await post(ask('alpha'))).json()) as { choices: { finish_reason: string }[] };
    expect(body.choices[0]!.finish_reason).toBe('length');
  });

  it("times the upstream's first event, or its failure, within the request's own time", async () => {
    for (const first of [text('a'), new UpstreamError(502, 'down')]) {
      upstream('alpha', [first, 'end']);
      await (await post(ask('alpha'))).text();
      const observation = observations.get(audit.of('access').at(-1)!.requestId as string)!;
      expect(observation.upstreamOutcome).toBe(first instanceof Error ? 'error' : 'ok');
      expect(observation.phases.upstream).toBeGreaterThanOrEqual(0);
      expect(observation.phases.upstream).toBeLessThanOrEqual(performance.now() - observation.startedAt);
    }
  });

  it('leaves usage out when the upstream reported none', async () => {
    upstream('alpha', [text('ok'), 'end']);
    const body = (await (await post(ask('alpha'))).json()) as Record<string, unknown>;
    expect(Object.keys(body)).not.toContain('usage');
    expect(Object.keys(await audit.waitFor('completion'))).not.toContain('usage');
    expect(Object.keys(audit.of('access')[0]!)).not.toContain('endUser');
  });

  it(`takes an answer of exactly ${ANSWER_LIMIT} bytes`, async () => {
    upstream('alpha', [text('x'.repeat(ANSWER_LIMIT - 1)), text('y'), 'end']);
    const response = await post(ask('alpha'));
    expect(response.status).toBe(200);
  });

  for (const [what, event] of [
    ['content', text('x'.repeat(ANSWER_LIMIT + 1))],
    [
      'a refusal',
      {
        type: 'choices',
        choices: [{ index: 0, delta: { refusal: 'x'.repeat(ANSWER_LIMIT + 1) }, finish_reason: null }],
      },
    ],
    [
      'tool call arguments',
      {
        type: 'choices',
        choices: [
          {
            index: 0,
            delta: { tool_calls: [{ function: { arguments: 'x'.repeat(ANSWER_LIMIT + 1) } }] },
            finish_reason: null,
          },
        ],
      },
    ],
    [
      'log probabilities',
      {
        type: 'choices',
        choices: [{ index: 0, delta: {}, finish_reason: null, logprobs: { content: ['x'.repeat(ANSWER_LIMIT)] } }],
      },
    ],
    [
      'several choices together',
      {
        type: 'choices',
        choices: [0, 1].map((index) => ({
          index,
          delta: { content: 'x'.repeat(ANSWER_LIMIT / 2 + 1) },
          finish_reason: null,
        })),
      },
    ],
  ] as [string, UpstreamEvent][]) {
    it(`refuses an answer over ${ANSWER_LIMIT} bytes of ${what} with a 502 and stops the upstream`, async () => {
      const model = upstream('alpha', [text('a'), event, text('never read'), 'end']);
      const response = await post(ask('alpha'));
      expect(response.status).toBe(502);
      expect((await response.json()) as ProblemDetails).toMatchObject({
        type: 'urn:clearance:problem:upstream-error',
        title: 'Model unavailable',
        detail: `The model's answer exceeded the gateway's limit of ${ANSWER_LIMIT} bytes.`,
      });
      expect(reasonOf(model.signal)).toBe('completion ended early');
      expect(model.pulls).toBe(2);
      expect(await audit.waitFor('completion')).toMatchObject({ outcome: 'upstream-error' });
    });
  }
});

describe('upstream failures', () => {
  it('maps an upstream 502 to the problem without the upstream’s own words, which go to the log', async () => {
    upstream('alpha', [new UpstreamError(502, 'Alpha could not be reached', 'secret upstream words')]);
    const response = await post(ask('alpha'));
    expect(response.status).toBe(502);
    const body = (await response.json()) as ProblemDetails;
    expect(body).toMatchObject({
      type: 'urn:clearance:problem:upstream-error',
      title: 'Model unavailable',
      status: 502,
      detail: 'Alpha could not be reached',
    });
    expect(JSON.stringify(body)).not.toContain('secret upstream words');
    const requestId = audit.of('access')[0]!.requestId as string;
    expect(logs).toEqual([`request ${requestId}: secret upstream words`]);
    expect(await audit.waitFor('completion')).toMatchObject({ outcome: 'upstream-error', finishReasons: [] });
    expect(observations.get(requestId)!.upstreamOutcome).toBe('error');
  });

  it('maps an upstream timeout to the 504', async () => {
    upstream('alpha', [new UpstreamError(504, 'Alpha did not answer in time')]);
    const response = await post(ask('alpha'));
    expect(response.status).toBe(504);
    expect((await response.json()) as ProblemDetails).toMatchObject({
      type: 'urn:clearance:problem:upstream-timeout',
      title: 'Model timed out',
      status: 504,
      detail: 'Alpha did not answer in time',
    });
  });

  it('maps an unexpected failure to a 502 that names only the request, and logs its stack', async () => {
    upstream('alpha', [new TypeError('undefined is not a function')]);
    const response = await post(ask('alpha'));
    expect(response.status).toBe(502);
    const body = (await response.json()) as ProblemDetails;
    const requestId = audit.of('access')[0]!.requestId as string;
    expect(body).toMatchObject({
      type: 'urn:clearance:problem:upstream-error',
      title: 'Model unavailable',
      detail: `The model failed; the gateway's log has the details (request ${requestId}).`,
    });
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(
      new RegExp(`^request ${requestId}: the model failed: TypeError: undefined is not a function\\n`),
    );
  });

  it('logs a thrown value that is not an error as it is', async () => {
    const failing = upstream('alpha');
    failing.stream = async function* () {
      yield* [];
      throw 'plain words';
    };
    const response = await post(ask('alpha'));
    expect(response.status).toBe(502);
    expect(logs).toEqual([expect.stringMatching(/^request req-\d+: the model failed: plain words$/)]);
    logs.length = 0;
    failing.stream = async function* () {
      yield* [];
      throw undefined;
    };
    expect((await post(ask('alpha'))).status).toBe(502);
    expect(logs).toEqual([expect.stringMatching(/^request req-\d+: the model failed: undefined$/)]);
  });

  it('leaves a gateway fault that is not the model’s to the error handler, unlogged as a model failure', async () => {
    scripted.upstreams.set('alpha', {
      stream() {
        throw new TypeError('not iterable');
      },
    } satisfies Upstream);
    const response = await post(ask('alpha'));
    expect(response.status).toBe(599);
    expect(await response.json()).toEqual({ unexpected: 'not iterable' });
    expect(logs).toEqual([]);
    expect(await audit.waitFor('completion')).toMatchObject({ outcome: 'upstream-error' });
  });

  it('passes a problem the upstream raised through as it is', async () => {
    upstream('alpha', [new ProblemError(problem('too-many-requests', 429, 'Slow down', 'Too fast.'))]);
    const response = await post(ask('alpha'));
    expect(response.status).toBe(429);
    expect((await response.json()) as ProblemDetails).toMatchObject({ title: 'Slow down', detail: 'Too fast.' });
    expect(logs).toEqual([]);
  });

  it('maps a failure after the first event the same way', async () => {
    const model = upstream('alpha', [text('a'), new UpstreamError(502, 'Alpha broke off', 'reset by peer')]);
    const response = await post(ask('alpha'));
    expect(response.status).toBe(502);
    expect((await response.json()) as ProblemDetails).toMatchObject({
      title: 'Model unavailable',
      detail: 'Alpha broke off',
    });
    expect(logs).toEqual([expect.stringMatching(/^request req-\d+: reset by peer$/)]);
    expect(model.signal.aborted).toBe(true);
    const observation = observations.get(audit.of('access')[0]!.requestId as string)!;
    expect(observation.upstreamOutcome).toBe('ok');
  });

  it('answers a model without its API key with the 502 naming the variable, without calling it', async () => {
    const response = await post(ask('unkeyed'));
    expect(response.status).toBe(502);
    expect((await response.json()) as ProblemDetails).toMatchObject({
      type: 'urn:clearance:problem:upstream-error',
      title: 'Model unavailable',
      detail: 'Unkeyed is not configured: environment variable CLEARANCE_TEST_UNSET_KEY holds no API key',
    });
    expect(await audit.waitFor('completion')).toMatchObject({ outcome: 'upstream-error' });
    expect(logs).toEqual([expect.stringMatching(/^request req-\d+: Unkeyed is not configured/)]);
  });

  it('logs a completion whose audit record fails, and still answers', async () => {
    audit.failing.add('completion');
    upstream('alpha', [text('ok'), 'end']);
    const response = await post(ask('alpha'));
    expect(response.status).toBe(200);
    const { id } = (await response.json()) as { id: string };
    await settle(() => logs.length > 0);
    expect(logs).toEqual([`auditing completion ${id} failed: audit store down`]);
  });
});

describe('streamed completions', () => {
  it('streams OpenAI chunks with the decision and request ids, then [DONE]; usage only when asked', async () => {
    upstream('alpha', [
      text('Hel'),
      text('lo', 0, 'stop'),
      { type: 'usage', usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } },
      'end',
    ]);
    const response = await post(ask('alpha', { stream: true, stream_options: { include_usage: true } }));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(response.headers.get('x-clearance-decision-id')).toBe('dec_1');
    const requestId = audit.of('access')[0]!.requestId as string;
    expect(response.headers.get('x-request-id')).toBe(requestId);
    expect(response.headers.get('server-timing')).toMatch(/(^|, )audit;dur=.*total;dur=/);
    const streamed = await readEvents(response);
    const chunks = streamed.slice(0, -1).map((event) => JSON.parse(event.data) as { id: string; created: number });
    const { id, created } = chunks[0]!;
    expect(id).toMatch(/^chatcmpl-[0-9a-f]{24}$/);
    const chunk = (choices: unknown[], usage: unknown = null) => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model: 'alpha',
      choices,
      usage,
    });
    expect(chunks).toEqual([
      chunk([{ index: 0, delta: { content: 'Hel' }, finish_reason: null }]),
      chunk([{ index: 0, delta: { content: 'lo' }, finish_reason: 'stop' }]),
      chunk([], { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 }),
    ]);
    expect(streamed.at(-1)).toEqual({ data: '[DONE]' });
    expect(await audit.waitFor('completion')).toMatchObject({
      outcome: 'complete',
      finishReasons: ['stop'],
      usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
    });
  });

  it('leaves usage out of a stream that did not ask for it, and asks for none when the upstream gave none', async () => {
    upstream('alpha', [
      text('a'),
      { type: 'usage', usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } },
      'end',
    ]);
    const plain = await readEvents(await post(ask('alpha', { stream: true })));
    expect(plain.map((event) => event.data)).toEqual([expect.not.stringContaining('usage'), '[DONE]']);
    upstream('alpha', [text('a'), 'end']);
    const asked = await readEvents(await post(ask('alpha', { stream: true, stream_options: { include_usage: true } })));
    expect(asked).toHaveLength(2);
    expect(JSON.parse(asked[0]!.data)).toMatchObject({ usage: null });
    expect(asked[1]).toEqual({ data: '[DONE]' });
  });

  it('sends no server timing for a request nobody observes', async () => {
    upstream('alpha', [text('a'), 'end']);
    const response = await post(ask('alpha', { stream: true }), { headers: { 'x-unobserved': '1' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('server-timing')).toBeNull();
    expect(response.headers.get('x-request-id')).toMatch(/^plain-\d+$/);
    await readEvents(response);
  });

  it('ends a stream whose upstream fails midway with the error event, no [DONE], and logs the cause', async () => {
    const model = upstream('alpha', [text('a'), new UpstreamError(504, 'Alpha went quiet', 'idle 60 s')]);
    const streamed = await readEvents(await post(ask('alpha', { stream: true })));
    expect(streamed).toHaveLength(2);
    expect(streamed[1]!.event).toBe('error');
    const payload = JSON.parse(streamed[1]!.data) as ProblemDetails;
    expect(payload).toEqual(
      streamErrorPayload(problem('upstream-timeout', 504, 'Model timed out', 'Alpha went quiet')),
    );
    expect(payload.error).toMatchObject({ code: 'upstream_timeout', status: 504 });
    expect(logs).toEqual([expect.stringMatching(/^request req-\d+: idle 60 s$/)]);
    expect(await audit.waitFor('completion')).toMatchObject({ outcome: 'upstream-error' });
    expect(model.signal.aborted).toBe(true);
  });
});

describe('streamed failures', () => {
  it('ends a stream whose upstream fails unexpectedly midway with the 502 error event naming the request', async () => {
    upstream('alpha', [text('a'), new RangeError('bad index')]);
    const streamed = await readEvents(await post(ask('alpha', { stream: true })));
    const requestId = audit.of('access')[0]!.requestId as string;
    expect(streamed[1]!.event).toBe('error');
    expect(JSON.parse(streamed[1]!.data)).toEqual(
      streamErrorPayload(
        problem(
          'upstream-error',
          502,
          'Model unavailable',
          `The model failed; the gateway's log has the details (request ${requestId}).`,
        ),
      ),
    );
    expect(logs).toEqual([
      expect.stringMatching(new RegExp(`^request ${requestId}: the model failed: RangeError: bad index`)),
    ]);
  });

  it('logs an error of the response stream', async () => {
    const model = upstream('alpha', [text('a')]);
    const response = await post(ask('alpha', { stream: true }));
    await settle(() => model.pulls >= 2);
    responseOf().emit('error', new Error('EPIPE'));
    expect(logs).toEqual([expect.stringMatching(/^completion chatcmpl-[0-9a-f]{24} stream failed: EPIPE$/)]);
    model.send('end');
    const streamed = await readEvents(response);
    const { id } = JSON.parse(streamed[0]!.data) as { id: string };
    expect(logs[0]).toBe(`completion ${id} stream failed: EPIPE`);
  });

  it('a connection that breaks as the upstream fails is recorded as client-closed, not as a model failure', async () => {
    const model = upstream('alpha', [text('a')]);
    const response = await post(ask('alpha', { stream: true }));
    await settle(() => model.pulls >= 2);
    // The connection is destroyed and the upstream fails in the same turn, before the close event.
    responseOf().destroy();
    model.send(new UpstreamError(502, 'Alpha broke off', 'reset'));
    await response.text().catch(() => '');
    expect(await audit.waitFor('completion')).toMatchObject({ outcome: 'client-closed' });
    expect(logs).toEqual([]);
  });

  it('an upstream that keeps sending after the client left is not written to the closed connection', async () => {
    // An upstream that ignores the abort and answers once told to.
    let release: (() => void) | undefined;
    let pulls = 0;
    scripted.upstreams.set('alpha', {
      async *stream() {
        pulls++;
        yield text('first');
        pulls++;
        await new Promise<void>((resolve) => (release = resolve));
        yield text('second');
        pulls++;
        await new Promise(() => {});
      },
    } satisfies Upstream);
    const controller = new AbortController();
    const response = await post(ask('alpha', { stream: true }), { signal: controller.signal });
    expect(response.status).toBe(200);
    await settle(() => release !== undefined);
    const raw = responseOf();
    controller.abort();
    await settle(() => raw.destroyed);
    release!();
    expect(await audit.waitFor('completion')).toMatchObject({ outcome: 'client-closed' });
    expect(pulls).toBe(2);
  });
});

describe('cutting a running completion', () => {
  it('a policy change that denies a running stream ends it with the 403 error event, no [DONE], and stops the upstream', async () => {
    const model = upstream('alpha', [text('first')]);
    const response = await post(ask('alpha', { stream: true }));
    expect(response.status).toBe(200);
    await settle(() => model.pulls >= 2);
    expect(access.inFlightCount).toBe(1);
    engine.rule = () => denyExport;
    expect(await access.applyChange('policy 2')).toMatchObject({ cut: 1 });
    const streamed = await readEvents(response);
    expect(streamed.map((event) => event.event)).toEqual([undefined, 'error']);
    const payload = JSON.parse(streamed[1]!.data) as ProblemDetails;
    expect(payload).toMatchObject({
      type: 'urn:clearance:problem:access-denied',
      status: 403,
      reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
      policy: 'ec-us',
      decisionId: 'dec_2',
      error: { type: 'permission_error', code: 'EXPORT_CONTROL_US_PERSON_REQUIRED', status: 403, decisionId: 'dec_2' },
    });
    expect(reasonOf(model.signal)).toBe('completion cut by policy');
    expect(access.inFlightCount).toBe(0);
    expect(await audit.waitFor('completion')).toMatchObject({ decisionId: 'dec_1', outcome: 'cut' });
  });

  it('a device revocation before the first event answers the 401 instead of a stream', async () => {
    const model = upstream('alpha');
    const response = post(ask('alpha', { stream: true }));
    await settle(() => model.pulls >= 1);
    expect(access.revokeDevice('ana', 'jkt-ana', 'Revoked by IT.')).toBe(1);
    const answer = await response;
    expect(answer.status).toBe(401);
    expect((await answer.json()) as ProblemDetails).toMatchObject({
      type: 'urn:clearance:problem:session-revoked',
      detail: 'Revoked by IT.',
    });
    expect(model.signal.aborted).toBe(true);
    expect(await audit.waitFor('completion')).toMatchObject({ outcome: 'cut' });
  });

  it('a cut while a non-streamed answer is being gathered answers the cut’s problem', async () => {
    const model = upstream('alpha', [text('a')]);
    const response = post(ask('alpha'));
    await settle(() => model.pulls >= 2);
    access.endUser('ana', problem('account-suspended', 403, 'Account suspended', 'IT suspended you.'), 'suspended');
    const answer = await response;
    expect(answer.status).toBe(403);
    expect((await answer.json()) as ProblemDetails).toMatchObject({
      type: 'urn:clearance:problem:account-suspended',
      detail: 'IT suspended you.',
    });
    expect(model.signal.aborted).toBe(true);
    expect(await audit.waitFor('completion')).toMatchObject({ outcome: 'cut' });
  });

  it('cuts only the completions of the device revoked', async () => {
    const kept = upstream('alpha', [text('a')]);
    const keptResponse = await post(ask('alpha', { stream: true }), { user: 'bob' });
    await settle(() => kept.pulls >= 2);
    expect(access.revokeDevice('ana', 'jkt-ana', 'Revoked.')).toBe(0);
    kept.send(text('b'), 'end');
    expect((await readEvents(keptResponse)).map((event) => event.data).at(-1)).toBe('[DONE]');
    expect(kept.signal.aborted).toBe(false);
  });

  it('a client that goes away stops the upstream, and the completion is audited as client-closed', async () => {
    const model = upstream('alpha', [text('a')]);
    const controller = new AbortController();
    const response = await post(ask('alpha', { stream: true }), { signal: controller.signal });
    expect(response.status).toBe(200);
    await settle(() => model.pulls >= 2);
    controller.abort();
    await settle(() => model.signal.aborted);
    expect(reasonOf(model.signal)).toBe('client closed the connection');
    expect(await audit.waitFor('completion')).toMatchObject({ outcome: 'client-closed' });
    expect(access.inFlightCount).toBe(0);
  });

  it('a client that goes away before the first event is not answered as a model failure', async () => {
    const model = upstream('alpha');
    const controller = new AbortController();
    const response = post(ask('alpha'), { signal: controller.signal }).catch(() => undefined);
    await settle(() => model.pulls >= 1);
    controller.abort();
    await response;
    await settle(() => model.signal.aborted);
    expect(await audit.waitFor('completion')).toMatchObject({ outcome: 'client-closed' });
    expect(logs).toEqual([]);
    // Nobody reads the answer; the request log sees 499, not a model failure.
    const raw = responseOf();
    await settle(() => raw.statusCode !== 200);
    expect(raw.statusCode).toBe(499);
  });
});

describe('a client that stops reading', () => {
  /** A raw HTTP request whose response is paused: nothing is read until `resume`. */
  function pausedStream(body: unknown): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const request = httpRequest(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'DPoP ana' },
        // A connection of its own: the buffers of an earlier, fast reader's connection have grown.
        agent: false,
      });
      request.on('response', (response) => {
        response.pause();
        resolve(response);
      });
      request.on('error', reject);
      request.end(JSON.stringify(body));
    });
  }

  const CHUNKS = 64;
  const big = (index: number) => text(`${index}`.padEnd(128 * 1024, '.'));

  it('holds the upstream once the client has 256 KiB waiting, and reads on when it drains', async () => {
    const model = upstream(
      'alpha',
      Array.from({ length: CHUNKS }, (_, index) => big(index)),
    );
    const response = await pausedStream(ask('alpha', { stream: true }));
    // The socket and the client take some; then the gateway waits for the client.
    const held = await steady(() => model.pulls);
    expect(held).toBeLessThan(CHUNKS);
    // Up to 256 KiB wait in the gateway before it stops reading the upstream.
    const raw = responseOf();
    expect(raw.writableLength).toBeGreaterThanOrEqual(256 * 1024);
    // The wait listens for the client to drain or to go.
    expect(raw.listenerCount('drain')).toBe(1);
    const closeWhileWaiting = raw.listenerCount('close');
    response.resume();
    const chunks: Buffer[] = [];
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    // Everything read, the gateway waits for the upstream again: each finished wait removed its listeners.
    await settle(() => model.pulls > CHUNKS);
    expect(model.pulls).toBe(CHUNKS + 1);
    expect(raw.listenerCount('drain')).toBe(0);
    expect(raw.listenerCount('close')).toBe(closeWhileWaiting - 1);
    model.send('end');
    await new Promise((resolve) => response.on('end', resolve));
    const streamed = Buffer.concat(chunks).toString('utf8');
    expect(streamed.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(streamed.split('chat.completion.chunk').length - 1).toBe(CHUNKS);
  });

  it('a cut while waiting for the client ends the stream with the error event', async () => {
    const model = upstream(
      'alpha',
      Array.from({ length: CHUNKS }, (_, index) => big(index)),
    );
    const response = await pausedStream(ask('alpha', { stream: true }));
    const held = await steady(() => model.pulls);
    expect(held).toBeLessThan(CHUNKS);
    const raw = responseOf();
    const closeWhileWaiting = raw.listenerCount('close');
    engine.rule = () => denyExport;
    expect(await access.applyChange('policy')).toMatchObject({ cut: 1 });
    expect(await audit.waitFor('completion')).toMatchObject({ outcome: 'cut' });
    // The wait ended by the cut removed its listeners (the client has not read a byte yet).
    expect(raw.listenerCount('drain')).toBe(0);
    expect(raw.listenerCount('close')).toBe(closeWhileWaiting - 1);
    response.resume();
    const chunks: Buffer[] = [];
    for await (const chunk of response) chunks.push(chunk as Buffer);
    const streamed = Buffer.concat(chunks).toString('utf8');
    expect(streamed).toMatch(/event: error\ndata: \{"type":"urn:clearance:problem:access-denied"/);
    expect(streamed).not.toContain('[DONE]');
    expect(model.signal.aborted).toBe(true);
    // Nothing more was read from the upstream after the cut.
    expect(model.pulls).toBe(held);
    expect(await audit.waitFor('completion')).toMatchObject({ outcome: 'cut' });
  });

  it('a client that goes away while the gateway waits for it ends the completion as client-closed', async () => {
    const model = upstream(
      'alpha',
      Array.from({ length: CHUNKS }, (_, index) => big(index)),
    );
    const response = await pausedStream(ask('alpha', { stream: true }));
    const held = await steady(() => model.pulls);
    expect(held).toBeLessThan(CHUNKS);
    response.destroy();
    expect(await audit.waitFor('completion')).toMatchObject({ outcome: 'client-closed' });
    expect(model.signal.aborted).toBe(true);
    expect(model.pulls).toBe(held);
    expect(access.inFlightCount).toBe(0);
  });
});
