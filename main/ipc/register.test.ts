import { describe, expect, it, vi } from 'vitest';
import { IPC_PREFIX, ipcCalls } from '../../shared/ipc';
import type { IpcHandlers } from './dispatch';
import { IpcFailure, dispatchIpc } from './dispatch';
import { isTrustedSender, registerIpcHandlers } from './register';
import { FakeIpcMain } from './testing';

class TestIpcMain extends FakeIpcMain {
  invoke(channel: string, payload: unknown, frameUrl: string | null = 'app://clearance/index.html') {
    return this.invokeRaw(IPC_PREFIX + channel, payload, frameUrl);
  }
}

function handlersWith(overrides: Partial<IpcHandlers>): IpcHandlers {
  const missing = () => Promise.reject(new IpcFailure('INTERNAL', 'not under test'));
  const all = Object.fromEntries(Object.keys(ipcCalls).map((c) => [c, missing]));
  return { ...all, ...overrides } as IpcHandlers;
}

describe('registerIpcHandlers', () => {
  it('registers one handler per call in the contract and removes them all', () => {
    const ipcMain = new TestIpcMain();
    const unregister = registerIpcHandlers(ipcMain, handlersWith({}));
    expect([...ipcMain.listeners.keys()].sort()).toEqual(
      Object.keys(ipcCalls)
        .map((c) => IPC_PREFIX + c)
        .sort(),
    );
    unregister();
    expect(ipcMain.listeners.size).toBe(0);
  });

  it('refuses a sender frame that is not the app page', async () => {
    const ipcMain = new TestIpcMain();
    const getAppInfo = vi.fn();
    registerIpcHandlers(ipcMain, handlersWith({ getAppInfo }));
    for (const url of ['https://evil.example/', 'file:///tmp/x.html', 'app://other/', null]) {
      const result = await ipcMain.invoke('getAppInfo', {}, url);
      expect(result).toMatchObject({ ok: false, error: { code: 'FORBIDDEN_SENDER' } });
    }
    expect(getAppInfo).not.toHaveBeenCalled();
  });

  it('answers a malformed payload with BAD_REQUEST naming the field, without calling the service', async () => {
    const ipcMain = new TestIpcMain();
    const getConversation = vi.fn();
    registerIpcHandlers(ipcMain, handlersWith({ getConversation }));
    const result = await ipcMain.invoke('getConversation', { id: 42 });
    expect(result).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    expect(JSON.stringify(result)).toContain('id');
    expect(getConversation).not.toHaveBeenCalled();
  });
});

describe('dispatchIpc', () => {
  it('answers an unknown channel, including prototype names, with UNKNOWN_CHANNEL', async () => {
    for (const channel of ['nope', '__proto__', 'constructor', 42]) {
      expect(await dispatchIpc(handlersWith({}), channel, {})).toMatchObject({
        ok: false,
        error: { code: 'UNKNOWN_CHANNEL' },
      });
    }
  });

  it('rejects extra keys on strict requests', async () => {
    const result = await dispatchIpc(handlersWith({}), 'stopChat', { conversationId: 'c1', evil: true });
    expect(result).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
  });

  it('passes the parsed request and returns the value', async () => {
    const stopChat = vi.fn(async () => ({ stopped: true }));
    const result = await dispatchIpc(handlersWith({ stopChat }), 'stopChat', { conversationId: 'c1' });
    expect(result).toEqual({ ok: true, value: { stopped: true } });
    expect(stopChat).toHaveBeenCalledWith({ conversationId: 'c1' });
  });

  it('strips fields outside the contract from answers, so secrets cannot leak through IPC', async () => {
    const getDeviceStatus = vi.fn(async () => ({
      checks: [],
      requiredChecks: [],
      gate: 'pass' as const,
      privateKey: 'SECRET',
    }));
    const result = await dispatchIpc(handlersWith({ getDeviceStatus }), 'getDeviceStatus', {});
    expect(result.ok).toBe(true);
    expect(JSON.stringify(result)).not.toContain('SECRET');
  });

  it('turns a service IpcFailure into its error value and anything else into INTERNAL', async () => {
    const signIn = vi.fn(async () => {
      throw new IpcFailure('SIGN_IN_FAILED', 'The identity provider refused the sign-in.');
    });
    const signOut = vi.fn(async () => {
      throw new Error('disk full');
    });
    const handlers = handlersWith({ signIn, signOut });
    expect(await dispatchIpc(handlers, 'signIn', {})).toEqual({
      ok: false,
      error: { code: 'SIGN_IN_FAILED', message: 'The identity provider refused the sign-in.' },
    });
    expect(await dispatchIpc(handlers, 'signOut', {}, () => {})).toMatchObject({
      ok: false,
      error: { code: 'INTERNAL', message: expect.stringContaining('disk full') },
    });
  });

  it('reports an answer outside the contract as INTERNAL rather than passing it on', async () => {
    const getAppInfo = vi.fn(async () => ({ name: 'Clearance' }) as never);
    const result = await dispatchIpc(handlersWith({ getAppInfo }), 'getAppInfo', {}, () => {});
    expect(result).toMatchObject({ ok: false, error: { code: 'INTERNAL' } });
  });
});

describe('isTrustedSender', () => {
  it('accepts only the app origin', () => {
    expect(isTrustedSender('app://clearance/index.html#/chat')).toBe(true);
    expect(isTrustedSender('app://clearance.evil/index.html')).toBe(false);
    expect(isTrustedSender('not a url')).toBe(false);
    expect(isTrustedSender(undefined)).toBe(false);
  });
});

describe('IPC refusals name what they refused and do not reach the service', () => {
  it('refuses an untrusted frame with the exact code and message, logs the frame, and calls nothing', async () => {
    const ipcMain = new TestIpcMain();
    const stopChat = vi.fn();
    const log = vi.fn();
    registerIpcHandlers(ipcMain, handlersWith({ stopChat }), { log });
    expect(await ipcMain.invoke('stopChat', { conversationId: 'c1' }, 'https://evil.example/x')).toEqual({
      ok: false,
      error: { code: 'FORBIDDEN_SENDER', message: 'This call is only answered for the Clearance window.' },
    });
    expect(await ipcMain.invoke('stopChat', { conversationId: 'c1' }, null)).toMatchObject({
      error: { code: 'FORBIDDEN_SENDER' },
    });
    expect(log.mock.calls).toEqual([
      ['Refused IPC stopChat from untrusted frame https://evil.example/x'],
      ['Refused IPC stopChat from untrusted frame (none)'],
    ]);
    expect(stopChat).not.toHaveBeenCalled();
  });

  it('answers the trusted frame through the contract', async () => {
    const ipcMain = new TestIpcMain();
    const stopChat = vi.fn(async () => ({ stopped: true }));
    registerIpcHandlers(ipcMain, handlersWith({ stopChat }));
    expect(await ipcMain.invoke('stopChat', { conversationId: 'c1' })).toEqual({ ok: true, value: { stopped: true } });
    expect(stopChat).toHaveBeenCalledOnce();
  });

  it('trusts only the origin it is given when one is given', async () => {
    const ipcMain = new TestIpcMain();
    const stopChat = vi.fn(async () => ({ stopped: true }));
    registerIpcHandlers(ipcMain, handlersWith({ stopChat }), { trustedOrigin: 'http://127.0.0.1:5173' });
    expect(await ipcMain.invoke('stopChat', { conversationId: 'c1' })).toMatchObject({
      error: { code: 'FORBIDDEN_SENDER' },
    });
    expect(await ipcMain.invoke('stopChat', { conversationId: 'c1' }, 'http://127.0.0.1:5173/index.html')).toEqual({
      ok: true,
      value: { stopped: true },
    });
  });

  it('names an unknown channel in its refusal', async () => {
    expect(await dispatchIpc(handlersWith({}), 'nope', {})).toEqual({
      ok: false,
      error: { code: 'UNKNOWN_CHANNEL', message: 'There is no call named "nope".' },
    });
  });

  it('lists each bad field, and the request itself when it is not an object', async () => {
    const getConversation = vi.fn();
    const handlers = handlersWith({ getConversation });
    const bad = await dispatchIpc(handlers, 'getConversation', { id: 42 });
    expect(bad).toEqual({
      ok: false,
      error: {
        code: 'BAD_REQUEST',
        message: 'The request to getConversation was not valid.',
        issues: [expect.stringMatching(/^id: /)],
      },
    });
    const notObject = await dispatchIpc(handlers, 'getConversation', 'c1');
    expect(notObject).toMatchObject({
      error: { code: 'BAD_REQUEST', issues: [expect.stringMatching(/^\(request\): /)] },
    });
    expect(getConversation).not.toHaveBeenCalled();
  });

  it('treats a missing payload as an empty request', async () => {
    const getAppInfo = vi.fn(async () => {
      throw new IpcFailure('INTERNAL', 'reached');
    });
    expect(await dispatchIpc(handlersWith({ getAppInfo }), 'getAppInfo', undefined)).toEqual({
      ok: false,
      error: { code: 'INTERNAL', message: 'reached' },
    });
    expect(getAppInfo).toHaveBeenCalledWith({});
  });

  it('logs an answer outside the contract and tells the user plainly', async () => {
    const log = vi.fn();
    const getAppInfo = vi.fn(async () => ({ name: 'Clearance' }) as never);
    expect(await dispatchIpc(handlersWith({ getAppInfo }), 'getAppInfo', {}, log)).toEqual({
      ok: false,
      error: { code: 'INTERNAL', message: 'Clearance produced an answer it could not check. Try again.' },
    });
    expect(log).toHaveBeenCalledOnce();
    // Every field that is wrong is named, each as `path: problem`, separated so a reader can tell them apart.
    expect(log.mock.calls[0]![0]).toMatch(/^IPC getAppInfo answered outside the contract: \w+: [^;]+; \w+: /);
  });

  it('names a nested field of a wrong answer by its whole dotted path', async () => {
    const log = vi.fn();
    const refreshEntitlements = vi.fn(async () => ({ status: 'current', models: [{ id: 42 }] }) as never);
    expect(await dispatchIpc(handlersWith({ refreshEntitlements }), 'refreshEntitlements', {}, log)).toMatchObject({
      ok: false,
      error: { code: 'INTERNAL' },
    });
    expect(log.mock.calls[0]![0]).toMatch(/: models\.0\.id: /);
  });

  it('logs an unexpected failure with its error and passes on only its message', async () => {
    const log = vi.fn();
    const failure = new Error('disk full');
    const signOut = vi.fn(async () => {
      throw failure;
    });
    const stopChat = vi.fn(async () => {
      throw 'plain string';
    });
    const handlers = handlersWith({ signOut, stopChat });
    expect(await dispatchIpc(handlers, 'signOut', {}, log)).toEqual({
      ok: false,
      error: { code: 'INTERNAL', message: 'Something went wrong: disk full' },
    });
    expect(log).toHaveBeenCalledWith('IPC signOut failed', failure);
    expect(await dispatchIpc(handlers, 'stopChat', { conversationId: 'c1' }, log)).toEqual({
      ok: false,
      error: { code: 'INTERNAL', message: 'Something went wrong: plain string' },
    });
  });

  it('keeps the extra fields of an IpcFailure', () => {
    const failure = new IpcFailure('SIGN_IN_FAILED', 'Refused.', { issues: ['x'] });
    expect(failure.error).toEqual({ code: 'SIGN_IN_FAILED', message: 'Refused.', issues: ['x'] });
    expect(failure.name).toBe('IpcFailure');
    expect(failure.message).toBe('Refused.');
  });

  it('compares the whole origin: scheme, host and port', () => {
    expect(isTrustedSender('app://clearance')).toBe(true);
    expect(isTrustedSender('app://clearance:8080/index.html')).toBe(false);
    expect(isTrustedSender('https://clearance/index.html')).toBe(false);
    expect(isTrustedSender('')).toBe(false);
    expect(isTrustedSender('http://127.0.0.1:5173/', 'http://127.0.0.1:5173')).toBe(true);
  });
});
