import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { IPC_PREFIX, ipcCalls, type IpcChannel } from '../../shared/ipc';
import { registerIpcHandlers } from '../../main/ipc/register';
import { FakeIpcMain } from '../../main/ipc/testing';
import { createNodeAdapters } from '../../main/node/adapters';
import { UNMANAGED } from '../../main/config/policy';
import { createServices, type ClearanceServices } from '../../main/services';
import { startBridgeServer, type BridgeServer } from './server';

/**
 * One contract suite, two transports: every call goes through the real IPC handlers (with a fake
 * sender) and through the harness bridge, and both must answer the same.
 */

/** A valid and a malformed request for every call; `satisfies` makes a new call in shared/ a compile error here. */
const requests = {
  getAppInfo: { valid: {}, malformed: { extra: 1 } },
  getManagedPolicy: { valid: {}, malformed: { all: true } },
  getSessionState: { valid: {}, malformed: [] },
  signIn: { valid: {}, malformed: 'now' },
  cancelSignIn: { valid: {}, malformed: { now: true } },
  signOut: { valid: {}, malformed: 7 },
  getEntitlements: { valid: {}, malformed: { ver: 1 } },
  refreshEntitlements: { valid: {}, malformed: null as unknown },
  getDeviceStatus: { valid: {}, malformed: { key: true } },
  recheckDevice: { valid: {}, malformed: 'x' },
  sendChat: { valid: { model: 'no-such-model', content: 'hi' }, malformed: { model: 'haiku-4', content: '' } },
  stopChat: { valid: { conversationId: 'c-none' }, malformed: { conversationId: 5 } },
  listConversations: { valid: {}, malformed: { query: 12 } },
  getConversation: { valid: { id: 'c-none' }, malformed: { id: '' } },
  renameConversation: { valid: { id: 'c-none', title: 'x' }, malformed: { id: 'c-none', title: '' } },
  deleteConversation: { valid: { id: 'c-none' }, malformed: {} },
  restoreConversation: { valid: { id: 'c-none' }, malformed: { id: ['a'] } },
  exportConversation: { valid: { id: 'c-none', format: 'json' }, malformed: { id: 'c-none', format: 'pdf' } },
  openExternal: { valid: { url: 'https://evil.example/' }, malformed: { url: 42 } },
  takeNotices: { valid: {}, malformed: { all: true } },
  getSaveStatus: { valid: {}, malformed: { now: 1 } },
  reportRendererError: { valid: { message: 'x', source: 'error' }, malformed: { message: 'x', source: 'console' } },
  exportDiagnostics: { valid: {}, malformed: { all: true } },
  getUpdateStatus: { valid: {}, malformed: { now: true } },
  checkForUpdates: { valid: {}, malformed: 'now' },
  installUpdate: { valid: {}, malformed: { version: '9.9.9' } },
} satisfies Record<IpcChannel, { valid: unknown; malformed: unknown }>;

let services: ClearanceServices;
let bridge: BridgeServer;
let socket: WebSocket;
const ipcMain = new FakeIpcMain();
let nextId = 1;
const pending = new Map<number, (value: unknown) => void>();

function viaIpc(channel: string, payload: unknown): Promise<unknown> {
  return ipcMain.invokeRaw(IPC_PREFIX + channel, payload);
}

function viaBridge(channel: string, payload: unknown): Promise<unknown> {
  const id = nextId++;
  return new Promise((resolve) => {
    pending.set(id, resolve);
    socket.send(JSON.stringify({ type: 'invoke', id, channel, payload }));
  });
}

beforeAll(async () => {
  const profile = await mkdtemp(join(tmpdir(), 'clearance-contract-'));
  services = createServices(
    createNodeAdapters({ paths: { userData: profile, logs: profile }, browser: { open: async () => {} } }),
    {
      // Nothing listens here: calls that need the gateway fail the same way through both transports.
      gatewayUrl: 'http://127.0.0.1:9',
      appVersion: '0.0.0-test',
      shell: 'harness',
      platform: 'linux',
      packaged: false,
      argv: [],
      env: {},
      managed: UNMANAGED,
      log: () => {},
    },
  );
  registerIpcHandlers(ipcMain, services.handlers);
  bridge = await startBridgeServer({ services, rendererDir: profile });
  socket = new WebSocket(`${bridge.origin.replace('http', 'ws')}/__bridge`, { origin: bridge.origin });
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  socket.send(JSON.stringify({ type: 'hello', token: bridge.token }));
  socket.on('message', (raw) => {
    const message = JSON.parse(String(raw)) as { type: string; id: number; result: unknown };
    if (message.type === 'result') pending.get(message.id)?.(message.result);
  });
});

afterAll(async () => {
  socket?.close();
  await bridge?.close();
  await services?.dispose();
});

describe('the IPC contract through both transports', () => {
  it('covers every call in shared/ipc.ts', () => {
    expect(Object.keys(requests).sort()).toEqual(Object.keys(ipcCalls).sort());
  });

  for (const [channel, { valid, malformed }] of Object.entries(requests)) {
    it(`${channel}: a malformed payload gets BAD_REQUEST from both`, async () => {
      const [ipc, ws] = await Promise.all([viaIpc(channel, malformed), viaBridge(channel, malformed)]);
      expect(ipc).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
      expect(ws).toEqual(ipc);
    });

    it(`${channel}: a valid payload gets the same answer from both`, async () => {
      const ipc = await viaIpc(channel, valid);
      const ws = await viaBridge(channel, valid);
      expect(ipc).toHaveProperty('ok');
      expect(normalise(ws)).toEqual(normalise(ipc));
    });
  }

  it('an unknown channel gets UNKNOWN_CHANNEL through the bridge', async () => {
    expect(await viaBridge('readFile', { path: '/etc/passwd' })).toMatchObject({
      ok: false,
      error: { code: 'UNKNOWN_CHANNEL' },
    });
  });

  it('the bridge refuses a socket with the wrong token', async () => {
    const intruder = new WebSocket(`${bridge.origin.replace('http', 'ws')}/__bridge`, { origin: bridge.origin });
    await new Promise((resolve) => intruder.once('open', resolve));
    intruder.send(JSON.stringify({ type: 'hello', token: 'guess' }));
    const code = await new Promise<number>((resolve) => intruder.once('close', resolve));
    expect(code).toBe(4401);
  });

  it('the bridge refuses a socket from another origin', async () => {
    const intruder = new WebSocket(`${bridge.origin.replace('http', 'ws')}/__bridge`, {
      origin: 'http://evil.example',
    });
    const failed = await new Promise<boolean>((resolve) => {
      intruder.once('open', () => resolve(false));
      intruder.once('error', () => resolve(true));
    });
    expect(failed).toBe(true);
  });
});

/** Timestamps differ between two calls made a moment apart; everything else must match. */
function normalise(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value), (key, v: unknown) => {
    if (typeof v !== 'string') return v;
    if (/At$|^checkedAt$/.test(key)) return '<time>';
    // A diagnostics bundle: its time stamp and log lines differ between two exports, the rest may not.
    if (key === 'fileName' && v.startsWith('clearance-diagnostics-')) return '<diagnostics file>';
    if (key === 'content' && v.includes('"kind": "clearance-diagnostics"')) {
      const { createdAt: _createdAt, recentLog: _recentLog, ...rest } = JSON.parse(v) as Record<string, unknown>;
      return normalise(rest);
    }
    return v;
  });
}
