// @vitest-environment jsdom
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClearance } from './test/fakeClearance';
import { clearance, PlatformUnavailableError } from './platform';

const host = window as unknown as { clearance?: unknown };

afterEach(() => {
  delete host.clearance;
});

describe('clearance()', () => {
  it('returns the API the preload or harness put on window', () => {
    const { api } = new FakeClearance();
    host.clearance = api;
    expect(clearance()).toBe(api);
  });

  it('explains that the page was opened outside the app when there is no bridge', () => {
    expect(() => clearance()).toThrow(PlatformUnavailableError);
    expect(() => clearance()).toThrow(/Open it from the Clearance app/);
  });

  it('names what is missing from an incomplete bridge', () => {
    host.clearance = { getAppInfo: () => undefined };
    expect(() => clearance()).toThrow(/missing getSessionState, signIn, on/);
  });
});
