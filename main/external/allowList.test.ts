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

  it('matches the whole host name, never a host that merely ends with an allowed one', () => {
    // Suffix matching would let anyone who registers `evilaccess.lab.example` (or controls a
    // subdomain) receive the user's click.
    for (const url of [
      'https://evilaccess.lab.example/request',
      'https://sub.access.lab.example/request',
      'https://xlogin.microsoftonline.com/',
      'https://lab.example/',
    ]) {
      expect(isAllowedExternalUrl(url, hosts)).toBe(false);
    }
    expect(isAllowedExternalUrl('https://ACCESS.Lab.Example/request', hosts)).toBe(true);
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
    expect(isAllowedExternalUrl('https://user@access.lab.example/', hosts)).toBe(false);
    expect(isAllowedExternalUrl('https://:pw@access.lab.example/', hosts)).toBe(false);
    expect(isAllowedExternalUrl('not a url', hosts)).toBe(false);
  });

  it('allows loopback http only when asked', () => {
    expect(isAllowedExternalUrl('http://127.0.0.1:8000/', hosts)).toBe(false);
    expect(isAllowedExternalUrl('http://127.0.0.1:8000/', hosts, { allowLoopbackHttp: true })).toBe(true);
  });

  it('treats localhost, 127.0.0.1 and [::1] as loopback, over http and https, only when asked', () => {
    const loopback = { allowLoopbackHttp: true };
    for (const url of ['http://localhost:8000/', 'http://[::1]:8000/', 'https://localhost:8443/', 'https://[::1]/']) {
      expect(isAllowedExternalUrl(url, hosts, loopback)).toBe(true);
      expect(isAllowedExternalUrl(url, hosts)).toBe(false);
      expect(isAllowedExternalUrl(url, hosts, { allowLoopbackHttp: false })).toBe(false);
    }
  });

  it('never widens to other hosts or schemes when loopback is allowed', () => {
    const loopback = { allowLoopbackHttp: true };
    expect(isAllowedExternalUrl('http://evil.example/', hosts, loopback)).toBe(false);
    expect(isAllowedExternalUrl('https://evil.example/', hosts, loopback)).toBe(false);
    expect(isAllowedExternalUrl('http://127.0.0.2/', hosts, loopback)).toBe(false);
    expect(isAllowedExternalUrl('ftp://127.0.0.1/', hosts, loopback)).toBe(false);
    expect(isAllowedExternalUrl('ws://localhost/', hosts, loopback)).toBe(false);
  });
});
