import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadOrCreateTlsMaterial } from './certificates';

const DAY_MS = 24 * 60 * 60 * 1000;

describe('loadOrCreateTlsMaterial', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clearance-idp-tls-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('makes a CA and a localhost certificate it signed, with owner-only private keys', async () => {
    const tls = await loadOrCreateTlsMaterial(dir);
    const ca = new X509Certificate(tls.caCertPem);
    const leaf = new X509Certificate(tls.certPem);
    expect(ca.ca).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.checkIssued(ca) && leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.checkHost('localhost')).toBe('localhost');
    expect(leaf.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect((await stat(join(dir, 'ca.key.pem'))).mode & 0o077).toBe(0);
    expect((await stat(join(dir, 'tls.key.pem'))).mode & 0o077).toBe(0);
  });

  it('reuses what it made on the next start', async () => {
    const first = await loadOrCreateTlsMaterial(dir);
    const second = await loadOrCreateTlsMaterial(dir);
    expect(second).toEqual(first);
  });

  it('re-issues the server certificate from the same CA when it nears its end', async () => {
    const first = await loadOrCreateTlsMaterial(dir);
    const later = await loadOrCreateTlsMaterial(dir, new Date(Date.now() + 360 * DAY_MS));
    expect(later.caCertPem).toBe(first.caCertPem);
    expect(later.certPem).not.toBe(first.certPem);
    expect(new X509Certificate(later.certPem).checkIssued(new X509Certificate(later.caCertPem))).toBe(true);
  });

  it('replaces a damaged server certificate', async () => {
    const first = await loadOrCreateTlsMaterial(dir);
    await writeFile(join(dir, 'tls.cert.pem'), 'not a certificate');
    const repaired = await loadOrCreateTlsMaterial(dir);
    expect(repaired.caCertPem).toBe(first.caCertPem);
    expect(() => new X509Certificate(repaired.certPem)).not.toThrow();
  });
});
