import { randomBytes, X509Certificate as NodeX509 } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeCertificate } from '../../testing/device-certificates';
import { x509 } from './certificate-chain';
import { DeviceCertificateVerifier, type CertificateSource, type DeviceCertificateOptions } from './device-certificate';

/**
 * DeviceCertificateVerifier without a gateway: a TLS socket is a stand-in with Node's
 * `getPeerCertificate` shape, a proxy request a peer address and headers. Every refusal by its exact
 * detail. device-certificate.test.ts proves the same over real mutual TLS and a real gateway.
 */

const DAY = 86_400_000;

interface Issued {
  readonly certificate: x509.X509Certificate;
  readonly keys: CryptoKeyPair;
  readonly pem: string;
  readonly der: Buffer;
}

async function make(
  name: string,
  issuer: Issued | undefined,
  options: { ca?: boolean; usages?: string[] | null; notAfter?: Date } = {},
): Promise<Issued> {
  const ca = options.ca ?? !issuer;
  const usages = options.usages === undefined ? (ca ? null : [x509.ExtendedKeyUsage.clientAuth]) : options.usages;
  const extensions: x509.Extension[] = [new x509.BasicConstraintsExtension(ca, undefined, true)];
  if (ca) extensions.push(new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true));
  if (usages) extensions.push(new x509.ExtendedKeyUsageExtension(usages));
  const { certificate, keys } = await makeCertificate(name, issuer, {
    extensions,
    serialNumber: `01${randomBytes(7).toString('hex')}`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: options.notAfter ?? new Date(Date.now() + DAY),
  });
  return { certificate, keys, pem: certificate.toString('pem'), der: Buffer.from(certificate.rawData) };
}

let root: Issued;
let intermediate: Issued;
let device: Issued;
let viaIntermediate: Issued;
let rogueRoot: Issued;
let rogue: Issued;
beforeAll(async () => {
  root = await make('Device Root', undefined);
  intermediate = await make('Device Issuing CA', root, { ca: true });
  device = await make('laptop-7', root);
  viaIntermediate = await make('laptop-8', intermediate);
  rogueRoot = await make('Rogue Root', undefined);
  rogue = await make('laptop-7', rogueRoot);
});

const PROXY = '10.0.0.5';
const fromProxy = (headers: IncomingHttpHeaders, remoteAddress = PROXY): CertificateSource => ({
  socket: { remoteAddress },
  headers,
});
const verifier = (options: Partial<DeviceCertificateOptions> = {}, clock?: () => Date) =>
  new DeviceCertificateVerifier({ ca: root.pem, ...options }, clock);
const proxied = (format?: 'xfcc' | 'client-cert' | 'pem', header?: string) =>
  verifier({
    trustedProxy: { addresses: [PROXY], ...(format ? { format } : {}), ...(header ? { header } : {}) },
  });

const b64 = (issued: Issued) => `:${issued.der.toString('base64')}:`;
const xfcc = (cert: Issued, chain: Issued[] = []) =>
  `Hash=abc;Cert="${encodeURIComponent(cert.pem)}"${chain.length ? `;Chain="${encodeURIComponent(chain.map((c) => c.pem).join('\n'))}"` : ''}`;

function expectVerified(result: Awaited<ReturnType<DeviceCertificateVerifier['verify']>>, issued: Issued, via: string) {
  const fingerprint = new NodeX509(issued.der).fingerprint256.replaceAll(':', '').toLowerCase();
  expect(result).toStrictEqual({
    verified: {
      subject: issued.certificate.subject,
      issuer: issued.certificate.issuer,
      serial: issued.certificate.serialNumber,
      fingerprint,
      notAfter: issued.certificate.notAfter.toISOString(),
      via,
    },
  });
}

function expectVerifiedResult(issued: Issued) {
  return {
    verified: {
      subject: issued.certificate.subject,
      issuer: issued.certificate.issuer,
      serial: issued.certificate.serialNumber,
      fingerprint: new NodeX509(issued.der).fingerprint256.replaceAll(':', '').toLowerCase(),
      notAfter: issued.certificate.notAfter.toISOString(),
      via: 'proxy',
    },
  };
}

/** A socket as Node's TLS gives it: the peer certificate with its issuers, the root pointing at itself. */
function tlsSocket(
  chain: Issued[],
  options: { encrypted?: boolean; remoteAddress?: string; selfIssued?: boolean; destroyed?: boolean } = {},
) {
  type Peer = { raw: Buffer; fingerprint256: string; issuerCertificate?: Peer };
  const peers: Peer[] = chain.map((issued) => ({
    raw: issued.der,
    fingerprint256: new NodeX509(issued.der).fingerprint256,
  }));
  peers.forEach((peer, i) => {
    // Node points a self-signed certificate at itself; the last of an incomplete chain has no issuer.
    const next = peers[i + 1] ?? (options.selfIssued === false ? undefined : peer);
    if (next) peer.issuerCertificate = next;
  });
  return {
    encrypted: options.encrypted ?? true,
    remoteAddress: options.remoteAddress ?? '192.0.2.1',
    getPeerCertificate: (detailed?: boolean) => {
      expect(detailed).toBe(true);
      return options.destroyed ? null : (peers[0] ?? {});
    },
  };
}

describe('DeviceCertificateVerifier configuration', () => {
  it('refuses proxy addresses that are not IP addresses, naming each', () => {
    expect(() => verifier({ trustedProxy: { addresses: ['10.0.0.1', 'proxy.lab', '10.0.0.300'] } })).toThrow(
      new Error('The trusted proxy addresses must be IP addresses: "proxy.lab", "10.0.0.300"'),
    );
  });

  it('refuses a CA bundle without certificates', () => {
    expect(() => new DeviceCertificateVerifier({ ca: 'none' })).toThrow(
      new Error('The device certificate CA bundle holds no PEM certificate'),
    );
  });

  it('gives the CA certificates as PEM for the TLS certificate request', () => {
    expect(verifier({ ca: [root.pem, intermediate.pem] }).caPem).toEqual([root.pem, intermediate.pem]);
  });
});

describe('a certificate from mutual TLS to the gateway itself', () => {
  it('is verified, via tls', async () => {
    expectVerified(await verifier().verify({ socket: tlsSocket([device, root]), headers: {} }), device, 'tls');
  });

  it('takes the intermediates the client sent, and stops at a root that names itself', async () => {
    const socket = tlsSocket([viaIntermediate, intermediate, root]);
    expectVerified(await verifier().verify({ socket, headers: {} }), viaIntermediate, 'tls');
    const withoutIntermediate = tlsSocket([viaIntermediate]);
    expect(await verifier().verify({ socket: withoutIntermediate, headers: {} })).toStrictEqual({
      detail:
        'the client certificate "CN=laptop-8" is not from the organisation\'s device CA: the certificate (issuer "CN=Device Issuing CA") does not chain to a trusted root',
    });
  });

  it('takes a chain the client left incomplete (the last certificate without an issuer)', async () => {
    const socket = tlsSocket([viaIntermediate, intermediate], { selfIssued: false });
    expectVerified(await verifier().verify({ socket, headers: {} }), viaIntermediate, 'tls');
    expectVerified(
      await verifier().verify({ socket: tlsSocket([device], { selfIssued: false }), headers: {} }),
      device,
      'tls',
    );
  });

  it('wins over a forwarded header, even from a trusted proxy', async () => {
    const socket = tlsSocket([device], { remoteAddress: PROXY });
    const result = await proxied('client-cert').verify({ socket, headers: { 'client-cert': b64(rogue) } });
    expectVerified(result, device, 'tls');
  });

  it('is not read from a socket that is not encrypted or has no peer certificate', async () => {
    const none = { detail: 'no client certificate was presented (by mutual TLS or a trusted proxy)' };
    expect(await verifier().verify({ socket: tlsSocket([device], { encrypted: false }), headers: {} })).toStrictEqual(
      none,
    );
    expect(await verifier().verify({ socket: tlsSocket([]), headers: {} })).toStrictEqual(none);
    expect(await verifier().verify({ socket: tlsSocket([device], { destroyed: true }), headers: {} })).toStrictEqual(
      none,
    );
    expect(await verifier().verify({ socket: {}, headers: {} })).toStrictEqual(none);
  });

  it('refuses a certificate of another CA with the same subject, and an expired one', async () => {
    expect(await verifier().verify({ socket: tlsSocket([rogue, rogueRoot]), headers: {} })).toStrictEqual({
      detail:
        'the client certificate "CN=laptop-7" is not from the organisation\'s device CA: the chain ends at "CN=Rogue Root", which is not a trusted root',
    });
    const at = new Date(Date.now() + 2 * DAY);
    expect(await verifier({}, () => at).verify({ socket: tlsSocket([device]), headers: {} })).toStrictEqual({
      detail: `the client certificate "CN=laptop-7" is not from the organisation's device CA: "CN=laptop-7" is not valid at ${at.toISOString()}`,
    });
  });

  it('refuses a certificate whose extended key usage is not client authentication, and takes one without any', async () => {
    const server = await make('server-only', root, { usages: [x509.ExtendedKeyUsage.serverAuth] });
    expect(await verifier().verify({ socket: tlsSocket([server]), headers: {} })).toStrictEqual({
      detail: 'the client certificate "CN=server-only" is not for client authentication (extended key usage)',
    });
    const both = await make('both', root, {
      usages: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
    });
    expectVerified(await verifier().verify({ socket: tlsSocket([both]), headers: {} }), both, 'tls');
    const any = await make('no-eku', root, { usages: null });
    expectVerified(await verifier().verify({ socket: tlsSocket([any]), headers: {} }), any, 'tls');
  });
});

describe('a certificate a proxy forwards', () => {
  it('is ignored from a peer that is not a configured proxy, naming the peer', async () => {
    const headers = { 'x-forwarded-client-cert': xfcc(device) };
    expect(await proxied().verify(fromProxy(headers, '10.0.0.6'))).toStrictEqual({
      detail:
        'a forwarded client certificate (x-forwarded-client-cert) came from 10.0.0.6, which is not a trusted proxy; it was ignored',
    });
    expect(await proxied().verify({ socket: {}, headers })).toStrictEqual({
      detail:
        'a forwarded client certificate (x-forwarded-client-cert) came from an unknown peer, which is not a trusted proxy; it was ignored',
    });
    expect(await verifier().verify(fromProxy(headers))).toStrictEqual({
      detail:
        'a forwarded client certificate (x-forwarded-client-cert) came from 10.0.0.5, which is not a trusted proxy; it was ignored',
    });
  });

  it('takes an IPv4 peer in its IPv6-mapped form, and IPv6 in any case', async () => {
    const headers = { 'x-forwarded-client-cert': xfcc(device) };
    expectVerified(await proxied().verify(fromProxy(headers, `::ffff:${PROXY}`)), device, 'proxy');
    const mapped = verifier({ trustedProxy: { addresses: [`::ffff:${PROXY}`] } });
    expectVerified(await mapped.verify(fromProxy(headers)), device, 'proxy');
    const v6 = verifier({ trustedProxy: { addresses: ['FD00::A'] } });
    expectVerified(await v6.verify(fromProxy(headers, 'fd00::a')), device, 'proxy');
    expect((await v6.verify(fromProxy(headers, '::ffff:fd00::a'))).verified).toBeUndefined();
    // An IPv4-embedded address that is not the mapped form is another peer.
    expect((await proxied().verify(fromProxy(headers, `::abcd:${PROXY}`))).verified).toBeUndefined();
    const notMapped = verifier({ trustedProxy: { addresses: ['::ffff:a00:5'] } });
    expectVerified(await notMapped.verify(fromProxy(headers, '::ffff:a00:5')), device, 'proxy');
    expect((await notMapped.verify(fromProxy(headers))).verified).toBeUndefined();
  });

  it('reads no header but the configured one', async () => {
    const custom = proxied('client-cert', 'X-Client-Cert-DER');
    expectVerified(await custom.verify(fromProxy({ 'x-client-cert-der': b64(device) })), device, 'proxy');
    expect(await custom.verify(fromProxy({ 'client-cert': b64(device) }))).toStrictEqual({
      detail: 'no client certificate was presented (by mutual TLS or a trusted proxy)',
    });
    expect(await proxied('pem').verify(fromProxy({ 'x-forwarded-client-cert': xfcc(device) }))).toStrictEqual({
      detail: 'no client certificate was presented (by mutual TLS or a trusted proxy)',
    });
  });

  it('refuses a forwarded certificate of another CA', async () => {
    expect(await proxied().verify(fromProxy({ 'x-forwarded-client-cert': xfcc(rogue) }))).toStrictEqual({
      detail:
        'the client certificate "CN=laptop-7" is not from the organisation\'s device CA: the certificate (issuer "CN=Rogue Root") does not chain to a trusted root',
    });
  });

  describe('as URL-encoded PEM (pem)', () => {
    it('reads the leaf and the chain after it', async () => {
      const header = encodeURIComponent(`${viaIntermediate.pem}\n${intermediate.pem}`);
      expectVerified(await proxied('pem').verify(fromProxy({ 'x-ssl-client-cert': header })), viaIntermediate, 'proxy');
    });

    it('says when it holds no certificate, or one that cannot be read', async () => {
      expect(await proxied('pem').verify(fromProxy({ 'x-ssl-client-cert': '' }))).toStrictEqual({
        detail: "the trusted proxy's x-ssl-client-cert header holds no certificate",
      });
      const broken = await proxied('pem').verify(fromProxy({ 'x-ssl-client-cert': '%E0%A4%A' }));
      expect(broken).toStrictEqual({
        detail: "the trusted proxy's x-ssl-client-cert header cannot be read: URI malformed",
      });
    });
  });

  describe('as RFC 9440 client-cert and client-cert-chain', () => {
    it('reads the leaf and the chain, with blanks around the items', async () => {
      const result = await proxied('client-cert').verify(
        fromProxy({ 'client-cert': ` ${b64(viaIntermediate)} `, 'client-cert-chain': ` ${b64(intermediate)} , ` }),
      );
      expectVerified(result, viaIntermediate, 'proxy');
    });

    it('joins a chain header given more than once', async () => {
      const root2 = await make('Second Root', undefined);
      const middle = await make('Second Middle', root2, { ca: true });
      const leaf = await make('laptop-9', middle);
      const bundle = verifier({ ca: root.pem, trustedProxy: { addresses: [PROXY], format: 'client-cert' } });
      // The chain header as two field lines: the intermediate in the second.
      const headers = { 'client-cert': b64(viaIntermediate), 'client-cert-chain': [b64(leaf), b64(intermediate)] };
      expectVerified(
        await bundle.verify(fromProxy(headers as unknown as IncomingHttpHeaders)),
        viaIntermediate,
        'proxy',
      );
    });

    it.each([
      ['without colons', (issued: Issued) => issued.der.toString('base64')],
      ['with text after it', (issued: Issued) => `${b64(issued)}x`],
      ['with text before it', (issued: Issued) => `x${b64(issued)}`],
      ['with a character outside base64', (issued: Issued) => `:${issued.der.toString('base64').slice(0, 40)}-AAA:`],
      ['with three padding characters', () => ':AAAAAA===:'],
      ['empty between its colons', () => '::'],
    ])('refuses a byte sequence %s', async (_name, form) => {
      expect(await proxied('client-cert').verify(fromProxy({ 'client-cert': form(device) }))).toStrictEqual({
        detail:
          "the trusted proxy's client-cert header cannot be read: not a structured-field byte sequence (:base64:)",
      });
    });

    it.each([
      [1, '=='],
      [2, '='],
    ])('takes base64 with padding (DER length %i mod 3: %s)', async (remainder, padding) => {
      let padded = device;
      while (padded.der.length % 3 !== remainder) padded = await make('laptop-7', root);
      expect(b64(padded).endsWith(`${padding}:`) && !b64(padded).endsWith(`=${padding}:`)).toBe(true);
      expectVerified(await proxied('client-cert').verify(fromProxy({ 'client-cert': b64(padded) })), padded, 'proxy');
    });

    it('refuses a chain item that is not a byte sequence', async () => {
      const result = await proxied('client-cert').verify(
        fromProxy({ 'client-cert': b64(device), 'client-cert-chain': `${b64(intermediate)}, AAAA` }),
      );
      expect(result).toStrictEqual({
        detail:
          "the trusted proxy's client-cert header cannot be read: not a structured-field byte sequence (:base64:)",
      });
    });
  });

  describe("as Envoy's x-forwarded-client-cert (xfcc, the default)", () => {
    const send = (value: string | string[]) =>
      proxied().verify(fromProxy({ 'x-forwarded-client-cert': value } as IncomingHttpHeaders));

    it('reads the Cert and Chain of the last element, the one the nearest proxy added', async () => {
      expectVerified(await send(`${xfcc(rogue)},${xfcc(viaIntermediate, [intermediate])}`), viaIntermediate, 'proxy');
      expectVerified(await send([xfcc(rogue), xfcc(device)]), device, 'proxy');
      // Two field lines are two elements: the proxy's own (the last) carries no certificate here.
      expect(await send([xfcc(device), 'By=spiffe://proxy'])).toStrictEqual({
        detail: "the trusted proxy's x-forwarded-client-cert header holds no certificate",
      });
      expectVerified(await send(`${xfcc(rogue)},${xfcc(rogue)}, ${xfcc(device)}`), device, 'proxy');
    });

    it('reads keys in any case, unquoted values, and skips pairs without "="', async () => {
      const value = `By=spiffe://gw;junk; CERT = ${encodeURIComponent(device.pem)} ;Subject="CN=a, b"`;
      expectVerified(await send(value), device, 'proxy');
    });

    it('does not let a pair without "=" stand for Cert', async () => {
      expect(await send(`Cert="${encodeURIComponent(device.pem)}";Certs`)).toStrictEqual(expectVerifiedResult(device));
    });

    it('unescapes a quoted value', async () => {
      // Every "-" of the PEM armour written as "\-": read back only when the escapes are undone.
      const escaped = encodeURIComponent(device.pem).replaceAll('-', '\\-');
      expectVerified(await send(`Cert= "${escaped}" `), device, 'proxy');
    });

    it('takes the last element even when it is empty, never the one before it', async () => {
      expect(await send(`${xfcc(device)},`)).toStrictEqual({
        detail: "the trusted proxy's x-forwarded-client-cert header holds no certificate",
      });
      expect(await send(`${xfcc(device)}, `)).toStrictEqual({
        detail: "the trusted proxy's x-forwarded-client-cert header holds no certificate",
      });
    });

    it('does not end a quoted value at an escaped quote', async () => {
      // Read without the escape, the quote would close early and ", Inc." would start another element.
      const value = `Cert="${encodeURIComponent(device.pem)}";Subject="O=\\"Evil, Inc.\\""`;
      expectVerified(await send(value), device, 'proxy');
    });

    it('takes a value as quoted only when it starts and ends with a quote', async () => {
      expectVerified(await send(`Cert=${encodeURIComponent(device.pem)}""`), device, 'proxy');
      expectVerified(await send(`Cert=""${encodeURIComponent(device.pem)}`), device, 'proxy');
    });

    it('keeps separators and escaped quotes inside quotes', async () => {
      const value = `Subject="CN=x, O=\\"y;z\\"";Cert="${encodeURIComponent(device.pem)}"`;
      expectVerified(await send(value), device, 'proxy');
    });

    it('leaves a backslash outside quotes as it is', async () => {
      const value = `By=a\\;Cert="${encodeURIComponent(device.pem)}"`;
      expectVerified(await send(value), device, 'proxy');
    });

    it('says when the last element has no certificate', async () => {
      const none = { detail: "the trusted proxy's x-forwarded-client-cert header holds no certificate" };
      expect(await send(`${xfcc(device)},By=spiffe://gw;Hash=abc`)).toStrictEqual(none);
      expect(await send(`${xfcc(device)},Cert=""`)).toStrictEqual(none);
      expect(await send(`${xfcc(device)},Cert="not%20PEM"`)).toStrictEqual(none);
      expect(await send(' , ')).toStrictEqual(none);
      expect(await send('')).toStrictEqual(none);
    });

    it('ignores a Chain that holds no certificate', async () => {
      const value = `Cert="${encodeURIComponent(device.pem)}";Chain="nothing"`;
      expectVerified(await send(value), device, 'proxy');
      const empty = `Cert="${encodeURIComponent(device.pem)}";Chain=""`;
      expectVerified(await send(empty), device, 'proxy');
    });

    it('refuses a header that leaves a quote open', async () => {
      expect(await send(`${xfcc(device)};Subject="x`)).toStrictEqual({
        detail: "the trusted proxy's x-forwarded-client-cert header cannot be read: an unclosed quote",
      });
      // A backslash at the very end inside the open quote does not close it either.
      expect(await send(`${xfcc(device)};Subject="x\\`)).toStrictEqual({
        detail: "the trusted proxy's x-forwarded-client-cert header cannot be read: an unclosed quote",
      });
    });
  });
});
