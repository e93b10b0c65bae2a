/**
 * The browser half of the harness bridge: gives the page `window.clearance` over a loopback WebSocket.
 *
 * Bundled by the harness and loaded before the app. The per-run token comes in the URL fragment
 * (never sent to a server, removed from the address bar at once) and is the first message sent.
 */
import { buildClearanceApi, type IpcEventName } from '../../shared/ipc';

type ServerMessage =
  | { readonly type: 'result'; readonly id: number; readonly result: unknown }
  | { readonly type: 'event'; readonly event: IpcEventName; readonly payload: unknown };

const fragment = new URLSearchParams(location.hash.slice(1));
const token = fragment.get('token') ?? sessionStorage.getItem('clearance.harness.token') ?? '';
if (fragment.has('token')) {
  sessionStorage.setItem('clearance.harness.token', token);
  history.replaceState(null, '', location.pathname + location.search);
}

const pending = new Map<number, (result: unknown) => void>();
const listeners = new Map<IpcEventName, Set<(payload: unknown) => void>>();
let nextId = 1;
let socket: WebSocket;
let ready: Promise<void>;

function connect(): void {
  socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/__bridge`);
  ready = new Promise((resolve, reject) => {
    socket.addEventListener('open', () => {
      socket.send(JSON.stringify({ type: 'hello', token }));
      resolve();
    });
    socket.addEventListener('error', () => reject(new Error('The harness bridge could not connect.')));
  });
  socket.addEventListener('message', (message) => {
    const data = JSON.parse(String(message.data)) as ServerMessage;
    if (data.type === 'result') {
      pending.get(data.id)?.(data.result);
      pending.delete(data.id);
    } else {
      listeners.get(data.event)?.forEach((listener) => listener(data.payload));
    }
  });
  socket.addEventListener('close', () => {
    for (const [id, resolve] of pending) {
      resolve({ ok: false, error: { code: 'INTERNAL', message: 'The connection to Clearance was lost.' } });
      pending.delete(id);
    }
  });
}

connect();

const api = buildClearanceApi({
  async invoke(channel, request) {
    await ready;
    const id = nextId++;
    return new Promise((resolve) => {
      pending.set(id, resolve);
      socket.send(JSON.stringify({ type: 'invoke', id, channel, payload: request }));
    });
  },
  subscribe(event, listener) {
    const set = listeners.get(event) ?? new Set();
    set.add(listener);
    listeners.set(event, set);
    return () => set.delete(listener);
  },
});

Object.defineProperty(window, 'clearance', { value: api, writable: false, configurable: false });
