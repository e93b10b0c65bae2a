import { X509Certificate as NodeX509 } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeCertificate, type MadeCertificate } from '../../testing/device-certificates';
import { certificateFingerprint, TrustBundle, x509 } from './certificate-chain';

/**
 * The trust-bundle chain check, with certificates made in process (@peculiar/x509, P-256): every
 * refusal by its exact message, at its boundary. No gateway, no TPM.
 */

const T0 = new Date('2030-01-01T00:00:00Z');
const DAY = 86_400_000;

type Issued = MadeCertificate;

interface Profile {
  /** Basic constraints: `true` a CA (pathLength optional), `false` an end entity, `undefined` no extension. */
  readonly ca?: boolean;
  readonly pathLength?: number;
  /** Key usages, or none. */
  readonly usages?: x509.KeyUsageFlags;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** Sign with this key instead of the issuer's (a forged signature). */
  readonly signingKey?: CryptoKey;
}

async function make(name: string, issuer: Issued | undefined, profile: Profile = {}): Promise<Issued> {
  const extensions: x509.Extension[] = [];
  if (profile.ca !== undefined)
    extensions.push(new x509.BasicConstraintsExtension(profile.ca, profile.pathLength, true));
  if (profile.usages !== undefined) extensions.push(new x509.KeyUsagesExtension(profile.usages, true));
  return makeCertificate(name, issuer, {
    extensions,
    notBefore: profile.notBefore ?? new Date(T0.getTime() - DAY),
    notAfter: profile.notAfter ?? new Date(T0.getTime() + DAY),
    ...(profile.signingKey ? { signingKey: profile.signingKey } : {}),
  });
}

const CA_USAGES = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign;
const pem = (...issued: Issued[]) => issued.map((i) => i.certificate.toString('pem')).join('\n');
const subjects = (chain: readonly x509.X509Certificate[]) => chain.map((certificate) => certificate.subject);

async function refusal(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(Error);
  return (error as Error).message;
}

let root: Issued;
let intermediate: Issued;
beforeAll(async () => {
  root = await make('Root', undefined, { ca: true, pathLength: 1, usages: CA_USAGES });
  intermediate = await make('Intermediate', root, { ca: true, pathLength: 0, usages: CA_USAGES });
});

describe('TrustBundle.fromPem', () => {
  it('reads every certificate of one text or of a list', () => {
    expect(subjects(TrustBundle.fromPem(pem(root, intermediate), 'roots').certificates)).toEqual([
      'CN=Root',
      'CN=Intermediate',
    ]);
    const list = [root.certificate.toString('pem'), intermediate.certificate.toString('pem')];
    expect(subjects(TrustBundle.fromPem(list, 'roots').certificates)).toEqual(['CN=Root', 'CN=Intermediate']);
    expect(subjects(TrustBundle.fromPem(`comment\n${pem(root)}\ntrailer`, 'roots').certificates)).toEqual(['CN=Root']);
  });

  it('refuses a text without a certificate, naming what it read', () => {
    expect(() => TrustBundle.fromPem('not PEM', 'The device CA')).toThrow(
      new Error('The device CA holds no PEM certificate'),
    );
    expect(() => TrustBundle.fromPem([], 'The device CA')).toThrow(new Error('The device CA holds no PEM certificate'));
    expect(() => TrustBundle.fromPem('-----BEGIN CERTIFICATE----------END CERTIFICATE-----', 'The device CA')).toThrow(
      new Error('The device CA holds no PEM certificate'),
    );
  });

  it('refuses a certificate that cannot be read, with the cause', () => {
    let thrown: unknown;
    try {
      TrustBundle.fromPem(`${pem(root)}\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----`, 'The roots');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(Error);
    expect((thrown as Error).message).toMatch(/^The roots holds a certificate that cannot be read: ./);
    expect((thrown as Error).cause).toBeInstanceOf(Error);
    expect((thrown as Error).message).toBe(
      `The roots holds a certificate that cannot be read: ${((thrown as Error).cause as Error).message}`,
    );
  });
});

describe('TrustBundle.verify', () => {
  it('returns the chain from the leaf to the root, through an intermediate of the bundle', async () => {
    const leaf = await make('Leaf', intermediate, { ca: false });
    const bundle = TrustBundle.fromPem(pem(root, intermediate), 'roots');
    expect(subjects(await bundle.verify(leaf.certificate, [], T0))).toEqual(['CN=Leaf', 'CN=Intermediate', 'CN=Root']);
  });

  it('takes the intermediates the client sends to fill the gap', async () => {
    const leaf = await make('Leaf', intermediate, { ca: false });
    const bundle = TrustBundle.fromPem(pem(root), 'roots');
    expect(subjects(await bundle.verify(leaf.certificate, [intermediate.certificate], T0))).toEqual([
      'CN=Leaf',
      'CN=Intermediate',
      'CN=Root',
    ]);
    expect(await refusal(bundle.verify(leaf.certificate, [], T0))).toBe(
      'the certificate (issuer "CN=Intermediate") does not chain to a trusted root',
    );
  });

  it('accepts a leaf the root signs itself, at the current time by default', async () => {
    const now = await make('Now Root', undefined, {
      ca: true,
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + DAY),
    });
    const leaf = await make('Leaf', now, {
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + DAY),
    });
    expect(subjects(await TrustBundle.fromPem(pem(now), 'roots').verify(leaf.certificate))).toEqual([
      'CN=Leaf',
      'CN=Now Root',
    ]);
  });

  it('refuses a trusted root presented as the leaf (no chain)', async () => {
    const bundle = TrustBundle.fromPem(pem(root), 'roots');
    expect(await refusal(bundle.verify(root.certificate, [], T0))).toBe(
      'the certificate (issuer "CN=Root") does not chain to a trusted root',
    );
  });

  it('refuses a chain that stops at an intermediate the bundle does not hold', async () => {
    const unknownRoot = await make('Unknown Root', undefined, { ca: true });
    const unknownIntermediate = await make('Unknown Intermediate', unknownRoot, { ca: true });
    const leaf = await make('Leaf', unknownIntermediate);
    const bundle = TrustBundle.fromPem(pem(root), 'roots');
    expect(await refusal(bundle.verify(leaf.certificate, [unknownIntermediate.certificate], T0))).toBe(
      'the certificate (issuer "CN=Unknown Intermediate") does not chain to a trusted root',
    );
  });

  it('refuses a chain that ends at a self-signed root the client sent, not one of the bundle', async () => {
    const rogue = await make('Rogue Root', undefined, { ca: true });
    const leaf = await make('Leaf', rogue);
    const bundle = TrustBundle.fromPem(pem(root), 'roots');
    expect(await refusal(bundle.verify(leaf.certificate, [rogue.certificate], T0))).toBe(
      'the chain ends at "CN=Rogue Root", which is not a trusted root',
    );
  });

  it('refuses a root of the same name and key usage but another key (a look-alike)', async () => {
    const lookAlike = await make('Root', undefined, { ca: true, pathLength: 1, usages: CA_USAGES });
    const leaf = await make('Leaf', lookAlike);
    const bundle = TrustBundle.fromPem(pem(root), 'roots');
    expect(await refusal(bundle.verify(leaf.certificate, [lookAlike.certificate], T0))).toBe(
      'the chain ends at "CN=Root", which is not a trusted root',
    );
  });

  it('refuses a leaf whose signature another key made', async () => {
    const forger = await make('Forger', undefined, { ca: true });
    const leaf = await make('Leaf', root, { signingKey: forger.keys.privateKey });
    const bundle = TrustBundle.fromPem(pem(root), 'roots');
    expect(await refusal(bundle.verify(leaf.certificate, [], T0))).toBe(
      'the certificate (issuer "CN=Root") does not chain to a trusted root',
    );
  });

  describe('validity, of every certificate in the chain, at the given time', () => {
    const at = (offset: number) => new Date(T0.getTime() + offset);

    it('holds from notBefore to notAfter, both included', async () => {
      const leaf = await make('Leaf', root, { notBefore: T0, notAfter: at(1000) });
      const bundle = TrustBundle.fromPem(pem(root), 'roots');
      expect(await bundle.verify(leaf.certificate, [], T0)).toHaveLength(2);
      expect(await bundle.verify(leaf.certificate, [], at(1000))).toHaveLength(2);
      expect(await refusal(bundle.verify(leaf.certificate, [], at(-1000)))).toBe(
        `"CN=Leaf" is not valid at ${at(-1000).toISOString()}`,
      );
      expect(await refusal(bundle.verify(leaf.certificate, [], at(2000)))).toBe(
        `"CN=Leaf" is not valid at ${at(2000).toISOString()}`,
      );
    });

    it('refuses an expired intermediate and an expired root', async () => {
      const oldIntermediate = await make('Old Intermediate', root, { ca: true, notAfter: at(-DAY / 2) });
      const leaf = await make('Leaf', oldIntermediate);
      expect(
        await refusal(TrustBundle.fromPem(pem(root, oldIntermediate), 'roots').verify(leaf.certificate, [], T0)),
      ).toBe(`"CN=Old Intermediate" is not valid at ${T0.toISOString()}`);
      const oldRoot = await make('Old Root', undefined, { ca: true, notAfter: at(-DAY / 2) });
      const leafOfOld = await make('Leaf', oldRoot);
      expect(await refusal(TrustBundle.fromPem(pem(oldRoot), 'roots').verify(leafOfOld.certificate, [], T0))).toBe(
        `"CN=Old Root" is not valid at ${T0.toISOString()}`,
      );
    });

    it('judges validity at the time given, not the current time', async () => {
      const past = new Date('2001-06-01T00:00:00Z');
      const oldRoot = await make('2001 Root', undefined, {
        ca: true,
        notBefore: new Date('2001-01-01T00:00:00Z'),
        notAfter: new Date('2002-01-01T00:00:00Z'),
      });
      const leaf = await make('2001 Leaf', oldRoot, {
        notBefore: new Date('2001-01-01T00:00:00Z'),
        notAfter: new Date('2002-01-01T00:00:00Z'),
      });
      expect(subjects(await TrustBundle.fromPem(pem(oldRoot), 'roots').verify(leaf.certificate, [], past))).toEqual([
        'CN=2001 Leaf',
        'CN=2001 Root',
      ]);
    });
  });

  describe('only a CA may issue (basic constraints, path length, key usage)', () => {
    const chainThrough = async (profile: Profile) => {
      const middle = await make('Middle', root, profile);
      const leaf = await make('Leaf', middle, { ca: false });
      return TrustBundle.fromPem(pem(root), 'roots').verify(leaf.certificate, [middle.certificate], T0);
    };

    it('accepts an intermediate CA with or without key usages', async () => {
      expect(await chainThrough({ ca: true, pathLength: 0, usages: CA_USAGES })).toHaveLength(3);
      expect(await chainThrough({ ca: true })).toHaveLength(3);
      expect(await chainThrough({ ca: true, usages: x509.KeyUsageFlags.keyCertSign })).toHaveLength(3);
    });

    it('refuses an end-entity certificate, or one without basic constraints, as an issuer', async () => {
      const notCa = '"CN=Middle" is not a CA certificate (basic constraints), so it may not issue certificates';
      expect(await refusal(chainThrough({ ca: false }))).toBe(notCa);
      expect(await refusal(chainThrough({}))).toBe(notCa);
    });

    it('refuses a CA whose key usages lack keyCertSign', async () => {
      expect(
        await refusal(
          chainThrough({ ca: true, usages: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.cRLSign }),
        ),
      ).toBe('"CN=Middle" is not a CA certificate (key usage lacks keyCertSign), so it may not issue certificates');
    });

    it('holds each intermediate to its path length, counting the CA certificates below it', async () => {
      // leaf ← a ← b ← c ← root: a has 0 CA certificates below it, b 1, c 2.
      const build = async (lengths: [number | undefined, number | undefined, number | undefined]) => {
        const c = await make('C', root, { ca: true, pathLength: lengths[2] });
        const b = await make('B', c, { ca: true, pathLength: lengths[1] });
        const a = await make('A', b, { ca: true, pathLength: lengths[0] });
        const leaf = await make('Leaf', a, { ca: false });
        return TrustBundle.fromPem(pem(root), 'roots').verify(
          leaf.certificate,
          [a.certificate, b.certificate, c.certificate],
          T0,
        );
      };
      expect(subjects(await build([0, 1, 2]))).toEqual(['CN=Leaf', 'CN=A', 'CN=B', 'CN=C', 'CN=Root']);
      expect(await build([undefined, undefined, undefined])).toHaveLength(5);
      expect(await refusal(build([0, 0, 2]))).toBe('"CN=B" may not issue through 1 intermediate CA(s) (path length)');
      expect(await refusal(build([0, 1, 1]))).toBe('"CN=C" may not issue through 2 intermediate CA(s) (path length)');
    });

    it('does not hold the trusted root itself to basic constraints or path length (it is IT’s anchor)', async () => {
      const bare = await make('Bare Root', undefined, {});
      const leaf = await make('Leaf', bare);
      expect(await TrustBundle.fromPem(pem(bare), 'roots').verify(leaf.certificate, [], T0)).toHaveLength(2);
      const strict = await make('Strict Root', undefined, {
        ca: true,
        pathLength: 0,
        usages: x509.KeyUsageFlags.cRLSign,
      });
      const middle = await make('Middle', strict, { ca: true });
      const leafOfMiddle = await make('Leaf', middle);
      expect(
        await TrustBundle.fromPem(pem(strict), 'roots').verify(leafOfMiddle.certificate, [middle.certificate], T0),
      ).toHaveLength(3);
    });

    it('does not hold the leaf to them either', async () => {
      const leaf = await make('Leaf', root, { ca: false, usages: x509.KeyUsageFlags.digitalSignature });
      expect(await TrustBundle.fromPem(pem(root), 'roots').verify(leaf.certificate, [], T0)).toHaveLength(2);
    });
  });
});

describe('certificateFingerprint', () => {
  it('is the SHA-256 of the DER, lower-case hex', () => {
    const node = new NodeX509(Buffer.from(root.certificate.rawData));
    expect(certificateFingerprint(root.certificate)).toBe(node.fingerprint256.replaceAll(':', '').toLowerCase());
  });
});
