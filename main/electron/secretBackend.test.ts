import { describe, expect, it } from 'vitest';
import { secretBackendKind } from './secretBackend';

const never = (): string => {
  throw new Error('the Linux backend is only asked on Linux');
};

describe('secretBackendKind', () => {
  it('trusts the OS store on macOS and Windows without asking for a Linux backend', () => {
    expect(secretBackendKind('darwin', never)).toBe('os');
    expect(secretBackendKind('win32', never)).toBe('os');
  });

  it('maps the Linux keyrings to os', () => {
    for (const backend of ['gnome_libsecret', 'kwallet', 'kwallet5', 'kwallet6']) {
      expect(secretBackendKind('linux', () => backend)).toBe('os');
    }
  });

  it('keeps basic_text (a hard-coded key) as basic_text', () => {
    expect(secretBackendKind('linux', () => 'basic_text')).toBe('basic_text');
  });

  it('treats unknown and any unreviewed backend name as unknown, never os', () => {
    expect(secretBackendKind('linux', () => 'unknown')).toBe('unknown');
    expect(secretBackendKind('linux', () => 'some_future_backend')).toBe('unknown');
    expect(secretBackendKind('linux', () => '')).toBe('unknown');
  });
});
