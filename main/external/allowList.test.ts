import { describe, expect, it } from 'vitest';
import { isAllowedExternalUrl } from './allowList';

const hosts = new Set(['access.lab.example', 'login.microsoftonline.com']);

describe('isAllowedExternalUrl', () => {
  it('allows https URLs on the allow-list', () => {
    expect(isAllowedExternalUrl('https://access.lab.example/request?m=mythos-5', hosts)).toBe(true);
  });

  it('refuses hosts that are not on the list, even as a suffix', () => {
    expect(isAllowedExternalUrl('https://evil.example/', hosts)).toBe(false);
    expect(isAllowedExternalUrl('https://access.lab.example.evil.example/', hosts)).toBe(false);
  });

  it('refuses every scheme but https', () => {
    for (const url of [
      'http://access.lab.example/',
      'file:///etc/passwd',
      'javascript:alert(1)',
      'smb://access.lab.example/x',
    ]) {
      expect(isAllowedExternalUrl(url, hosts)).toBe(false);
    }
  });

  it('refuses URLs with credentials and garbage', () => {
    expect(isAllowedExternalUrl('https://user:pw@access.lab.example/', hosts)).toBe(false);
    expect(isAllowedExternalUrl('not a url', hosts)).toBe(false);
  });

  it('allows loopback http only when asked', () => {
    expect(isAllowedExternalUrl('http://127.0.0.1:8000/', hosts)).toBe(false);
    expect(isAllowedExternalUrl('http://127.0.0.1:8000/', hosts, { allowLoopbackHttp: true })).toBe(true);
  });
});
