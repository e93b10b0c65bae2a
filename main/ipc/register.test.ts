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
