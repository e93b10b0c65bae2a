import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startGatewayHarness, type GatewayHarness } from '../../gateway/testing/gateway-harness';
import { testPersonas, type TestPersona } from '../../gateway/testing/identity-provider';
import { DECISION_ID_HEADER } from '../../shared/protocol';
import type { ConversationStore } from '../conversations/ConversationStore';
import { StoreFixture } from '../conversations/testing/fixture';
import { compliantLinuxDevice, createRecordedPostureService } from '../device/fixtures/devices';
import { DeviceKeyStore } from '../device/key';
import { MemorySecretStore } from '../node/adapters';
import { GatewaySession } from '../session/gateway-session';
import { ChatService } from './ChatService';

// The client's chat code against the real gateway (gateway/server.ts) over loopback HTTP, so a
// header or field spelled differently on the two sides fails here, unlike against a fake.

let harness: GatewayHarness;
let folder: string;
let fixture: StoreFixture;
let store: ConversationStore;
let chat: ChatService;
let decisionHeaders: string[];
let forbidden: number;

beforeAll(async () => {
  harness = await startGatewayHarness();
  folder = await mkdtemp(join(tmpdir(), 'clearance-chat-it-'));
});

afterAll(async () => {
  await harness?.close();
  await rm(folder, { recursive: true, force: true });
});

async function chatAs(persona: TestPersona): Promise<void> {
  const keys = new DeviceKeyStore({
    paths: { userData: join(folder, randomUUID()), logs: folder },
    secrets: new MemorySecretStore(),
    log: () => undefined,
  });
  const posture = createRecordedPostureService(compliantLinuxDevice);
  const session = new GatewaySession({
    gatewayUrl: harness.gateway.url,
    http: (input, init) => fetch(input, init),
    clock: { now: () => Date.now() },
    deviceKey: () => keys.load(),
    posture: () => posture.check(),
    getIdpAccessToken: () => harness.idp.mint(persona),
    appVersion: '0.1.0',
    platform: compliantLinuxDevice.platform,
  });
  await session.ensureSession();
  chat = new ChatService({
    store,
    fetch: async (path, init) => {
      const response = await session.fetch(path, init);
      const id = response.headers.get(DECISION_ID_HEADER);
      if (id) decisionHeaders.push(id);
      return response;
    },
    // Let every call through, so the gateway's own decision is what the test sees.
    checkModel: () => ({ allowed: true }),
    onForbidden: () => forbidden++,
    emit: () => undefined,
    clock: fixture.clock,
    log: () => undefined,
  });
}

beforeEach(async () => {
  fixture = await StoreFixture.create();
  store = fixture.store({ flushIntervalMs: 20 });
  decisionHeaders = [];
  forbidden = 0;
});

afterEach(async () => {
  await chat?.dispose();
  await fixture.dispose();
});

describe('ChatService against the real gateway', () => {
  it("records the decision id of an allowed reply in the conversation, the same id as the gateway's audit record", async () => {
    await chatAs(testPersonas.usResearcher);
    const sent = await chat.send({ model: 'haiku-4', content: 'Say hello.' });
    await chat.settled(sent.conversationId);

    expect(decisionHeaders).toHaveLength(1);
    const decisionId = decisionHeaders[0]!;
    expect(decisionId).toMatch(/^dec_[0-9a-f]{32}$/);
    await store.close();
    const saved = await fixture.store().get(sent.conversationId);
    expect(saved.messages).toMatchObject([
      { role: 'user', model: 'haiku-4', decisionId },
      { id: sent.messageId, role: 'assistant', model: 'haiku-4', decisionId, status: 'complete' },
    ]);
    expect((saved.messages[1]?.content ?? '').length).toBeGreaterThan(0);
    const record = await harness.gateway.audit.get(decisionId);
    expect(record).toMatchObject({
      kind: 'access',
      subject: testPersonas.usResearcher.id,
      data: { model: 'haiku-4', effect: 'allow' },
    });
    expect(forbidden).toBe(0);
  });

  it("records the decision id of the gateway's refusal on the failed reply, and the refusal is audited as a deny", async () => {
    await chatAs(testPersonas.fnResearcher);
    const sent = await chat.send({ model: 'mythos-5', content: 'Summarise the design.' });
    await chat.settled(sent.conversationId);

    await store.close();
    const saved = await fixture.store().get(sent.conversationId);
    const reply = saved.messages.find((m) => m.id === sent.messageId);
    expect(reply).toMatchObject({ role: 'assistant', status: 'error', content: '' });
    const decisionId = reply?.decisionId;
    expect(decisionId).toMatch(/^dec_[0-9a-f]{32}$/);
    const record = await harness.gateway.audit.get(decisionId!);
    expect(record).toMatchObject({
      kind: 'access',
      subject: testPersonas.fnResearcher.id,
      data: { model: 'mythos-5', effect: 'deny' },
    });
    // The reply names the same rule and reason the gateway's record holds.
    expect(reply?.error).toMatchObject({
      code: 'MODEL_DENIED',
      reason: record?.data.reason,
      policy: record?.data.policy,
    });
    expect(record?.data.reason).toBe('EXPORT_CONTROL_US_PERSON_REQUIRED');
    expect(forbidden).toBe(1);
  });
});
