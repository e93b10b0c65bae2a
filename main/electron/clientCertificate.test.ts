import { describe, expect, it } from 'vitest';
import { chooseClientCertificate, type ClientCertificateCandidate } from './clientCertificate';

const NOW = Date.parse('2026-12-06T12:00:00Z');
const day = 86_400;
const nowSeconds = NOW / 1000;

function certificate(
  serialNumber: string,
  issuer: string,
  validStart = nowSeconds - 30 * day,
  validExpiry = nowSeconds + 300 * day,
): ClientCertificateCandidate {
  return {
    issuerName: `${issuer}, O=Lab`,
    issuer: { commonName: issuer },
    subjectName: `CN=laptop-${serialNumber}`,
    serialNumber,
    fingerprint: `sha256/${serialNumber}`,
    validStart,
    validExpiry,
  };
}

const gatewayUrl = 'https://gateway.lab.example';
const fromGateway = { url: 'https://gateway.lab.example/v1/session', fromPage: false };

describe('chooseClientCertificate', () => {
  it('presents the valid certificate to the gateway, for the main process only', () => {
    const device = certificate('01', 'Lab Device CA');
    const choice = chooseClientCertificate(fromGateway, [device], { gatewayUrl, now: NOW });
    expect(choice.certificate).toBe(device);
    expect(choice.why).toBe('presenting CN=laptop-01 (serial 01) to https://gateway.lab.example');
  });

  it('never presents one to a page, even one on the gateway origin', () => {
    const choice = chooseClientCertificate({ ...fromGateway, fromPage: true }, [certificate('01', 'Lab Device CA')], {
      gatewayUrl,
      now: NOW,
    });
    expect(choice.certificate).toBeUndefined();
    expect(choice.why).toContain('a page asked');
  });

  it('never presents one to another origin: another host, port or scheme', () => {
    const list = [certificate('01', 'Lab Device CA')];
    for (const url of [
      'https://evil.example/v1/session',
      'https://gateway.lab.example.evil.example/',
      'https://gateway.lab.example:8443/v1/session',
      'http://gateway.lab.example/v1/session',
      'not a url',
    ]) {
      const choice = chooseClientCertificate({ url, fromPage: false }, list, { gatewayUrl, now: NOW });
      expect(choice.certificate, url).toBeUndefined();
      expect(choice.why, url).toContain('is not the gateway');
    }
  });

  it('presents nothing without an https gateway', () => {
    const list = [certificate('01', 'Lab Device CA')];
    for (const configured of [undefined, '', 'http://gateway.lab.example', 'nonsense']) {
      const choice = chooseClientCertificate(
        { url: configured || 'http://gateway.lab.example/', fromPage: false },
        list,
        { gatewayUrl: configured, now: NOW },
      );
      expect(choice.certificate, String(configured)).toBeUndefined();
      expect(choice.why).toBe('no https gateway is configured');
    }
  });

  it('skips certificates that are expired or not yet valid, to the second', () => {
    const expired = certificate('01', 'Lab Device CA', nowSeconds - 400 * day, nowSeconds - 1);
    const future = certificate('02', 'Lab Device CA', nowSeconds + 1, nowSeconds + 400 * day);
    const none = chooseClientCertificate(fromGateway, [expired, future], { gatewayUrl, now: NOW });
    expect(none.certificate).toBeUndefined();
    expect(none.why).toBe('no valid certificate among the 2 the system offered');
    // On the boundaries themselves a certificate is valid.
    const edges = [
      certificate('03', 'Lab Device CA', nowSeconds, nowSeconds + day),
      certificate('04', 'Lab Device CA', nowSeconds - day, nowSeconds),
    ];
    for (const edge of edges) {
      expect(chooseClientCertificate(fromGateway, [edge], { gatewayUrl, now: NOW }).certificate).toBe(edge);
    }
  });

  it('takes only the issuer IT names, by common name or full name, ignoring case and spaces', () => {
    const personal = certificate('01', 'Personal CA', nowSeconds - day);
    const device = certificate('02', 'Lab Device CA', nowSeconds - 10 * day);
    const list = [personal, device];
    expect(
      chooseClientCertificate(fromGateway, list, { gatewayUrl, issuer: 'lab device ca ', now: NOW }).certificate,
    ).toBe(device);
    expect(
      chooseClientCertificate(fromGateway, list, { gatewayUrl, issuer: 'Lab Device CA, O=Lab', now: NOW }).certificate,
    ).toBe(device);
    const other = chooseClientCertificate(fromGateway, list, { gatewayUrl, issuer: 'Other CA', now: NOW });
    expect(other.certificate).toBeUndefined();
    expect(other.why).toBe('no valid certificate issued by Other CA among the 2 the system offered');
    // A blank issuer setting is the same as none.
    expect(chooseClientCertificate(fromGateway, list, { gatewayUrl, issuer: '  ', now: NOW }).certificate).toBe(
      personal,
    );
  });

  it('prefers the most recently issued of several (a renewal before the certificate it replaces)', () => {
    const old = certificate('01', 'Lab Device CA', nowSeconds - 300 * day);
    const renewed = certificate('02', 'Lab Device CA', nowSeconds - 2 * day);
    const middle = certificate('03', 'Lab Device CA', nowSeconds - 100 * day);
    const list = [old, renewed, middle];
    expect(chooseClientCertificate(fromGateway, list, { gatewayUrl, now: NOW }).certificate).toBe(renewed);
    // The list the system gave is left as it was.
    expect(list).toEqual([old, renewed, middle]);
  });
});
