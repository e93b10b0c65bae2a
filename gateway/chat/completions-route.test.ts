import { writeFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EntitlementDocument } from '../../shared/entitlements';
import { ProblemDetails, PROBLEM_CONTENT_TYPE } from '../../shared/problem';
import { startGatewayHarness, type GatewayHarness } from '../testing/gateway-harness';
import { testPersonas } from '../testing/identity-provider';
import { SseReader } from '../testing/device-client';
import { DEMO_NOTICE } from './demo-upstream';
import {
  anthropicEvents,
  openAiChunks,
  startFakeUpstream,
  writeEvents,
  type FakeUpstream,
} from '../testing/fake-upstream';
import type { CatalogFile } from '../catalog';

const chatBody = (model: string, stream = false) => ({
  model,
  stream,
  messages: [{ role: 'user', content: 'How should I plan an ablation study?' }],
});

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('chat completions against the demo model', () => {
  let harness: GatewayHarness;
  beforeAll(async () => {
    harness = await startGatewayHarness({ demoTokensPerSecond: 5000 });
  });
  afterAll(async () => {
    await harness?.close();
  });

  it('answers an allowed model without streaming, labelled as a demo', async () => {
    const client = await harness.signIn(testPersonas.usResearcher);
    const response = await client.request('POST', '/v1/chat/completions', { body: chatBody('mythos-5') });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-clearance-decision-id')).toMatch(/^dec_/);
    const completion = (await response.json()) as {
      object: string;
      model: string;
      choices: { message: { role: string; content: string }; finish_reason: string }[];
    };
    expect(completion.object).toBe('chat.completion');
    expect(completion.model).toBe('mythos-5');
    expect(completion.choices[0]?.message.content.startsWith(DEMO_NOTICE)).toBe(true);
    expect(completion.choices[0]?.finish_reason).toBe('stop');
  });

  it('streams OpenAI-style chunks ending with [DONE]', async () => {
    const client = await harness.signIn(testPersonas.fnResearcher);
    const response = await client.request('POST', '/v1/chat/completions', { body: chatBody('haiku-4', true) });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const reader = new SseReader(response);
    let text = '';
    let finish: string | null = null;
    for (;;) {
      const event = await reader.next();
      if (!event || event.data === '[DONE]') break;
      const chunk = JSON.parse(event.data) as {
        object: string;
        choices: { delta: { content?: string }; finish_reason: string | null }[];
      };
      expect(chunk.object).toBe('chat.completion.chunk');
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toContain('## Haiku 4 on');
    expect(finish).toBe('stop');
  });

  it('refuses a denied model with a 403 problem that matches the document and is audited', async () => {
    const client = await harness.signIn(testPersonas.fnResearcher);
    const document = EntitlementDocument.parse((await client.entitlements()).claims);
    const entry = document.models.find((m) => m.id === 'mythos-5');
    const response = await client.request('POST', '/v1/chat/completions', {
      body: chatBody('mythos-5', true),
      headers: { accept: `text/event-stream, ${PROBLEM_CONTENT_TYPE}` },
    });
    expect(response.status).toBe(403);
    expect(response.headers.get('content-type')).toContain(PROBLEM_CONTENT_TYPE);
    const problem = ProblemDetails.parse(await response.json());
    expect(problem).toMatchObject({
      status: 403,
      reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
      policy: 'ec-2026-06-us-persons',
      message: 'Mythos 5 may only be used by verified US persons under directive EC-2026-06.',
    });
    expect(problem.reason).toBe(entry?.reason);
    expect(problem.policy).toBe(entry?.policy);
    expect(problem.remediation).toEqual(entry?.remediation);
    const record = await harness.gateway.audit.get(problem.decisionId!);
    expect(record?.kind).toBe('access');
    expect(record?.subject).toBe('fn-researcher');
    expect(record?.data).toMatchObject({
      model: 'mythos-5',
      effect: 'deny',
      reason: 'EXPORT_CONTROL_US_PERSON_REQUIRED',
    });
    expect(await harness.gateway.audit.verifyChain()).toMatchObject({ ok: true });
  });

  it('answers a hidden model as not found, but still audits the decision', async () => {
    const client = await harness.signIn(testPersonas.usResearcher);
    const response = await client.request('POST', '/v1/chat/completions', { body: chatBody('sentinel-red-team') });
    expect(response.status).toBe(404);
    const problem = ProblemDetails.parse(await response.json());
    expect(problem.reason).toBeUndefined();
    expect((await harness.gateway.audit.get(problem.decisionId!))?.data).toMatchObject({
      reason: 'GROUP_MEMBERSHIP_REQUIRED',
    });
  });

  it('rejects a malformed request body with a 400 problem', async () => {
    const client = await harness.signIn(testPersonas.usResearcher);
    const response = await client.request('POST', '/v1/chat/completions', { body: { model: 'haiku-4', messages: [] } });
    expect(response.status).toBe(400);
    expect(ProblemDetails.parse(await response.json()).detail).toContain('messages');
  });

  it('lists only the models the user may call', async () => {
    const client = await harness.signIn(testPersonas.contractor);
    const response = await client.request('GET', '/v1/models');
    const list = (await response.json()) as { object: string; data: { id: string; owned_by: string }[] };
    expect(list.object).toBe('list');
    expect(list.data.map((m) => m.id)).toEqual(['haiku-4']);
    expect(list.data[0]?.owned_by).toBe('clearance-demo');
  });
});

describe('live policy changes', () => {
  let harness: GatewayHarness;
  beforeAll(async () => {
    harness = await startGatewayHarness({ demoTokensPerSecond: 15 });
  });
  afterAll(async () => {
    await harness?.close();
  });

  it('cuts a running stream with the reason within a second and pushes entitlements.changed', async () => {
    const client = await harness.signIn(testPersonas.usResearcher);
    const events = new SseReader(await client.request('GET', '/v1/events'));
    const initial = await events.next();
    expect(initial?.event).toBe('entitlements.changed');
    const initialVer = (JSON.parse(initial!.data) as { ver: number }).ver;

    const response = await client.request('POST', '/v1/chat/completions', { body: chatBody('mythos-5', true) });
    expect(response.status).toBe(200);
    const stream = new SseReader(response);
    expect((await stream.next())?.data).toContain('"role":"assistant"');
    expect((await stream.next())?.data).toContain('chat.completion.chunk');

    const changedAt = performance.now();
    writeFileSync(
      join(harness.policiesDir, 'emergency.cedar'),
      `@id("ec-2026-07-mythos-suspension")
@reason("MODEL_SUSPENDED")
@title("Suspended by directive EC-2026-07")
@message("{model} is suspended for everyone under directive EC-2026-07.")
@since("2026-07-01T00:00:00Z")
forbid (principal, action == Clearance::Action::"invoke", resource == Clearance::Model::"mythos-5");
`,
    );
    let cut;
    for (;;) {
      const event = await stream.next(3000);
      if (!event) throw new Error('the stream ended without an error event');
      if (event.event === 'error') {
        cut = event;
        break;
      }
      expect(event.data).not.toBe('[DONE]');
    }
    const cutMs = performance.now() - changedAt;
    const changed = await events.next(3000);
    const eventMs = performance.now() - changedAt;
    console.log(
      `policy change -> stream cut in ${cutMs.toFixed(0)} ms, entitlements.changed in ${eventMs.toFixed(0)} ms`,
    );
    expect(cutMs).toBeLessThan(1000);
    expect(eventMs).toBeLessThan(1000);

    const payload = JSON.parse(cut.data) as ProblemDetails & { error: { type: string; code: string; message: string } };
    expect(payload).toMatchObject({
      status: 403,
      reason: 'MODEL_SUSPENDED',
      policy: 'ec-2026-07-mythos-suspension',
      message: 'Mythos 5 is suspended for everyone under directive EC-2026-07.',
      error: {
        type: 'permission_error',
        code: 'MODEL_SUSPENDED',
        status: 403,
        policy: 'ec-2026-07-mythos-suspension',
        decisionId: payload.decisionId,
      },
    });
    expect(payload.decisionId).not.toBe(response.headers.get('x-clearance-decision-id'));
    expect((await harness.gateway.audit.get(payload.decisionId!))?.data).toMatchObject({
      effect: 'deny',
      trigger: expect.stringContaining('policy revision'),
    });
    await stream.finished();

    expect(changed?.event).toBe('entitlements.changed');
    const newVer = (JSON.parse(changed!.data) as { ver: number }).ver;
    expect(newVer).toBeGreaterThan(initialVer);
    const document = EntitlementDocument.parse((await client.entitlements()).claims);
    expect(document.ver).toBe(newVer);
    expect(document.models.find((m) => m.id === 'mythos-5')?.reason).toBe('MODEL_SUSPENDED');

    // Lifting a forbid by deleting its file is an act an administrator confirms (issue 10).
    unlinkSync(join(harness.policiesDir, 'emergency.cedar'));
    await harness.gateway.reloadPolicies({ acceptRemovals: true });
    await waitFor(() => harness.gateway.policy.policies.every((p) => p.file !== 'emergency.cedar'), 2000, 'the reload');
    const restored = await events.next(3000);
    expect((JSON.parse(restored!.data) as { ver: number }).ver).toBeGreaterThan(newVer);
  });

  it('keeps the last good policy in force when a policy file is malformed', async () => {
    const client = await harness.signIn(testPersonas.fnResearcher);
    const revision = harness.gateway.policy.revision;
    const file = join(harness.policiesDir, 'broken.cedar');
    writeFileSync(file, '@id("broken")\npermit (principal, action, resource) when { principal.usPerson = ;\n');
    await waitFor(() => harness.logLines.some((line) => line.includes('broken.cedar')), 2000, 'the rejection log line');
    const line = harness.logLines.find((l) => l.includes('broken.cedar'))!;
    expect(line).toMatch(/^policy reload rejected: broken\.cedar: line 2, column \d+/);
    expect(line).toContain(`keeping revision ${revision}`);
    expect(harness.gateway.policy.revision).toBe(revision);

    const denied = await client.request('POST', '/v1/chat/completions', { body: chatBody('mythos-5') });
    expect(denied.status).toBe(403);
    expect(ProblemDetails.parse(await denied.json()).reason).toBe('EXPORT_CONTROL_US_PERSON_REQUIRED');
    const allowed = await client.request('POST', '/v1/chat/completions', {
      body: { ...chatBody('haiku-4'), max_tokens: 3 },
    });
    expect(allowed.status).toBe(200);
    unlinkSync(file);
  });

  it('rejects a forbid without a @reason and keeps the previous set', async () => {
    const result = await (async () => {
      writeFileSync(
        join(harness.policiesDir, 'unexplained.cedar'),
        '@id("unexplained")\nforbid (principal, action, resource);\n',
      );
      try {
        return await harness.gateway.reloadPolicies();
      } finally {
        unlinkSync(join(harness.policiesDir, 'unexplained.cedar'));
      }
    })();
    expect(result).toMatchObject({ ok: false, error: expect.stringContaining('a forbid needs @reason') });
    expect(harness.gateway.policy.policies.map((p) => p.id)).not.toContain('unexplained');
  });
});

describe('remote upstreams behind the gateway', () => {
  let harness: GatewayHarness;
  let openai: FakeUpstream;
  let anthropic: FakeUpstream;
  let silent: FakeUpstream;
  const open = {
    exportControlled: false,
    suspended: false,
    requiredGroups: [],
    requiresHardware: false,
    requiresCompliantDevice: false,
  };
  beforeAll(async () => {
    openai = await startFakeUpstream((_, res) => writeEvents(res, openAiChunks(['Hello ', 'from OpenAI'])));
    anthropic = await startFakeUpstream((_, res) => writeEvents(res, anthropicEvents(['Hello ', 'from Claude'])));
    silent = await startFakeUpstream(() => {});
    const catalog: CatalogFile = {
      models: [
        {
          id: 'remote-openai',
          name: 'Remote OpenAI',
          upstream: { kind: 'openai', baseUrl: `${openai.url}/v1`, model: 'gpt-x', apiKeyEnv: 'TEST_OPENAI_KEY' },
          attributes: open,
        },
        {
          id: 'remote-claude',
          name: 'Remote Claude',
          upstream: { kind: 'anthropic', baseUrl: anthropic.url, model: 'claude-x', apiKeyEnv: 'TEST_ANTHROPIC_KEY' },
          attributes: open,
        },
        {
          id: 'remote-slow',
          name: 'Remote Slow',
          upstream: { kind: 'openai', baseUrl: silent.url, model: 'm' },
          attributes: open,
        },
        {
          id: 'remote-unkeyed',
          name: 'Remote Unkeyed',
          upstream: { kind: 'openai', baseUrl: openai.url, model: 'm', apiKeyEnv: 'UNSET_KEY' },
          attributes: open,
        },
      ],
    };
    harness = await startGatewayHarness({
      catalog,
      env: { TEST_OPENAI_KEY: 'sk-openai', TEST_ANTHROPIC_KEY: 'sk-anthropic' },
      upstreamTimeouts: { responseMs: 400, idleMs: 400 },
    });
  });
  afterAll(async () => {
    await harness?.close();
    await Promise.all([openai?.close(), anthropic?.close(), silent?.close()]);
  });

  async function streamedText(response: Response): Promise<string> {
    const reader = new SseReader(response);
    let text = '';
    for (;;) {
      const event = await reader.next();
      if (!event || event.data === '[DONE]') return text;
      text +=
        (JSON.parse(event.data) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '';
    }
  }

  it('relays an OpenAI-compatible upstream with its API key', async () => {
    const client = await harness.signIn(testPersonas.contractor);
    const response = await client.request('POST', '/v1/chat/completions', { body: chatBody('remote-openai', true) });
    expect(await streamedText(response)).toBe('Hello from OpenAI');
    expect(openai.received.at(-1)?.headers.authorization).toBe('Bearer sk-openai');
  });

  it('relays the Anthropic Messages API as OpenAI chunks', async () => {
    const client = await harness.signIn(testPersonas.contractor);
    const response = await client.request('POST', '/v1/chat/completions', { body: chatBody('remote-claude', true) });
    expect(await streamedText(response)).toBe('Hello from Claude');
    expect(anthropic.received.at(-1)?.headers['x-api-key']).toBe('sk-anthropic');
  });

  it('answers 504 when the upstream does not respond, instead of hanging', async () => {
    const client = await harness.signIn(testPersonas.contractor);
    const started = Date.now();
    const response = await client.request('POST', '/v1/chat/completions', { body: chatBody('remote-slow', true) });
    expect(response.status).toBe(504);
    expect(ProblemDetails.parse(await response.json()).title).toBe('Model timed out');
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('answers 502 naming the missing API key variable', async () => {
    const client = await harness.signIn(testPersonas.contractor);
    const response = await client.request('POST', '/v1/chat/completions', { body: chatBody('remote-unkeyed') });
    expect(response.status).toBe(502);
    expect(ProblemDetails.parse(await response.json()).detail).toContain('UNSET_KEY');
  });
});
