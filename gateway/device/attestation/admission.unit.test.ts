import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { enrolmentMessages, reasonTitles } from '../../../shared/reasons';
import { ProblemError } from '../../http/problems';
import { SqliteAuditLog } from '../../store/audit-log';
import { openGatewayDatabase, type GatewayDatabase } from '../../store/database';
import { admitDevice, type AdmissionRequest } from './admission';
import { OPEN_ENROLMENT, parseEnrolmentPolicy, type EnrolmentPolicy } from './enrolment-policy';
import { SqliteEnrolmentStore, type EnrolmentFacts } from './enrolments';

/**
 * The enrolment policy applied to a device asking for a session, driven directly: the real
 * enrolment store and audit log in an in-memory SQLite database, requests built by hand.
 */
let db: GatewayDatabase;
let store: SqliteEnrolmentStore;
let audit: SqliteAuditLog;
let now: Date;

beforeEach(() => {
  db = openGatewayDatabase(':memory:');
  now = new Date('2026-12-06T08:00:00.000Z');
  store = new SqliteEnrolmentStore(db, () => now);
  audit = new SqliteAuditLog(db, () => now);
});
afterEach(() => {
  db.close();
});

const later = (seconds: number) => {
  now = new Date(now.getTime() + seconds * 1000);
  return now.toISOString();
};

function facts(extra: Partial<EnrolmentFacts> = {}): EnrolmentFacts {
  return { userId: 'alice', jkt: 'jkt-1', deviceId: 'laptop-1', platform: 'linux', assurance: 'software', ...extra };
}

function request(extra: Partial<AdmissionRequest> = {}, factsExtra: Partial<EnrolmentFacts> = {}): AdmissionRequest {
  return {
    facts: facts(factsExtra),
    claimedAssurance: 'software',
    tpmVerified: false,
    certificateVerified: false,
    ...extra,
  };
}

/** The problem `admitDevice` refused with (fails the test when it admitted). */
async function refusal(policy: EnrolmentPolicy, admission: AdmissionRequest) {
  const outcome = await admitDevice(policy, store, audit, admission).then(
    (record) => ({ admitted: record }),
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(ProblemError);
  return (outcome as ProblemError).problem;
}

const enrolmentRecords = async () => (await audit.list()).filter((r) => r.kind === 'enrolment');

const tpm = parseEnrolmentPolicy('tpm');
const certificate = parseEnrolmentPolicy('certificate');
const approval = parseEnrolmentPolicy('approval');

describe('admitDevice: what a device must prove', () => {
  it('admits any device under the open policy, records it approved, and audits nothing', async () => {
    const record = await admitDevice(OPEN_ENROLMENT, store, audit, request());
    expect(record).toStrictEqual({
      ...facts(),
      status: 'approved',
      requestedAt: now.toISOString(),
      lastSeenAt: now.toISOString(),
    });
    expect(await store.find('alice', 'jkt-1')).toStrictEqual(record);
    expect(await audit.list()).toEqual([]);
  });

  it('refuses a report claiming hardware without a verified TPM attestation, audits it, and enrols nothing', async () => {
    const body = await refusal(OPEN_ENROLMENT, request({ claimedAssurance: 'hardware' }));
    const detail =
      'The posture report claims a hardware-backed key but carries no TPM key attestation; ' +
      'only a key whose attestation the gateway verified counts as hardware.';
    expect(body).toStrictEqual({
      type: 'urn:clearance:problem:device-attestation-failed',
      title: reasonTitles.DEVICE_ATTESTATION_FAILED,
      status: 403,
      detail,
      reason: 'DEVICE_ATTESTATION_FAILED',
      message: enrolmentMessages.DEVICE_ATTESTATION_FAILED,
      step: 'missing',
    });
    expect(await store.find('alice', 'jkt-1')).toBeUndefined();
    const records = await enrolmentRecords();
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ kind: 'enrolment', subject: 'alice' });
    expect(records[0]!.data).toStrictEqual({
      outcome: 'refused',
      reason: 'DEVICE_ATTESTATION_FAILED',
      step: 'missing',
      jkt: 'jkt-1',
      policy: 'open',
      detail,
    });
  });

  it('admits a hardware claim that a verified TPM attestation backs', async () => {
    const record = await admitDevice(
      OPEN_ENROLMENT,
      store,
      audit,
      request({ claimedAssurance: 'hardware', tpmVerified: true }, { assurance: 'hardware', ekFingerprint: 'ek-1' }),
    );
    expect(record.status).toBe('approved');
    expect(record.ekFingerprint).toBe('ek-1');
  });

  it('refuses a device without a TPM attestation when the policy requires one, naming the policy', async () => {
    const body = await refusal(tpm, request());
    const detail =
      'The enrolment policy (tpm) admits only devices whose key a TPM attests, and this request carries no TPM key attestation.';
    expect(body).toMatchObject({
      type: 'urn:clearance:problem:device-attestation-failed',
      status: 403,
      reason: 'DEVICE_ATTESTATION_FAILED',
      step: 'missing',
      detail,
    });
    expect(await store.find('alice', 'jkt-1')).toBeUndefined();
    expect((await enrolmentRecords()).map((r) => r.data)).toStrictEqual([
      { outcome: 'refused', reason: 'DEVICE_ATTESTATION_FAILED', step: 'missing', jkt: 'jkt-1', policy: 'tpm', detail },
    ]);
  });

  it('admits a TPM-attested device under the tpm policy', async () => {
    const record = await admitDevice(tpm, store, audit, request({ tpmVerified: true }, { ekFingerprint: 'ek-1' }));
    expect(record.status).toBe('approved');
    expect(await enrolmentRecords()).toEqual([]);
  });

  it('refuses a device without a managed-device certificate when the policy requires one, saying why none counts', async () => {
    const body = await refusal(certificate, request({ certificateDetail: 'its CA is not trusted' }));
    const detail =
      "The enrolment policy (certificate) admits only devices that present a managed-device certificate from the organisation's CA: its CA is not trusted.";
    expect(body).toStrictEqual({
      type: 'urn:clearance:problem:device-certificate-required',
      title: reasonTitles.DEVICE_CERTIFICATE_REQUIRED,
      status: 403,
      detail,
      reason: 'DEVICE_CERTIFICATE_REQUIRED',
      message: enrolmentMessages.DEVICE_CERTIFICATE_REQUIRED,
    });
    expect(await store.find('alice', 'jkt-1')).toBeUndefined();
    // No attestation step: the certificate is not part of the TPM attestation.
    expect((await enrolmentRecords()).map((r) => r.data)).toStrictEqual([
      { outcome: 'refused', reason: 'DEVICE_CERTIFICATE_REQUIRED', jkt: 'jkt-1', policy: 'certificate', detail },
    ]);
  });

  it('says none was presented when the request names no reason', async () => {
    const body = await refusal(certificate, request());
    expect(body.detail).toBe(
      "The enrolment policy (certificate) admits only devices that present a managed-device certificate from the organisation's CA: none was presented.",
    );
  });

  it('admits a device with a verified certificate under the certificate policy', async () => {
    const record = await admitDevice(certificate, store, audit, request({ certificateVerified: true }));
    expect(record.status).toBe('approved');
  });

  it('checks every requirement of a combined policy', async () => {
    const both = parseEnrolmentPolicy('certificate+tpm');
    expect((await refusal(both, request({ certificateVerified: true }))).reason).toBe('DEVICE_ATTESTATION_FAILED');
    expect((await refusal(both, request({ tpmVerified: true }))).reason).toBe('DEVICE_CERTIFICATE_REQUIRED');
    expect(await store.find('alice', 'jkt-1')).toBeUndefined();
    const record = await admitDevice(both, store, audit, request({ tpmVerified: true, certificateVerified: true }));
    expect(record.status).toBe('approved');
  });
});

describe('admitDevice: approval', () => {
  it('keeps a new device pending, refuses it with the date it asked, and admits it once approved', async () => {
    const requestedAt = now.toISOString();
    const body = await refusal(approval, request());
    const detail = `This device (laptop-1) waits for an administrator's approval since ${requestedAt}.`;
    expect(body).toStrictEqual({
      type: 'urn:clearance:problem:device-enrolment-pending',
      title: reasonTitles.DEVICE_ENROLMENT_PENDING,
      status: 403,
      detail,
      reason: 'DEVICE_ENROLMENT_PENDING',
      message: enrolmentMessages.DEVICE_ENROLMENT_PENDING,
    });
    expect((await store.find('alice', 'jkt-1'))?.status).toBe('pending');
    expect((await enrolmentRecords()).map((r) => r.data)).toStrictEqual([
      { outcome: 'refused', reason: 'DEVICE_ENROLMENT_PENDING', jkt: 'jkt-1', policy: 'approval', detail },
    ]);

    // Asking again later: still pending since the first request.
    later(60);
    expect((await refusal(approval, request())).detail).toBe(detail);

    await store.decide('alice', 'jkt-1', 'approved', 'it-admin');
    const record = await admitDevice(approval, store, audit, request());
    expect(record).toMatchObject({ status: 'approved', decidedBy: 'it-admin', requestedAt });
  });

  it('refuses a retired device with the date IT retired it, whatever the policy', async () => {
    await store.upsert(facts(), 'approved');
    const retiredAt = later(10);
    await store.decide('alice', 'jkt-1', 'retired', 'it-admin');
    later(10);
    for (const policy of [OPEN_ENROLMENT, approval]) {
      const body = await refusal(policy, request());
      expect(body).toStrictEqual({
        type: 'urn:clearance:problem:device-revoked',
        title: 'Device retired',
        status: 403,
        detail: `IT retired this device on ${retiredAt}; contact IT to enrol it again.`,
      });
    }
    expect((await store.find('alice', 'jkt-1'))?.status).toBe('retired');
  });

  it('names no date for a device recorded as retired without one', async () => {
    await store.upsert(facts(), 'retired');
    expect((await refusal(OPEN_ENROLMENT, request())).detail).toBe(
      'IT retired this device on an earlier date; contact IT to enrol it again.',
    );
  });
});

describe('admitDevice: a retired TPM stays out', () => {
  const attested = (jkt: string, ek = 'ek-1') => request({ tpmVerified: true }, { jkt, ekFingerprint: ek });

  it('refuses a new key made in the TPM of a device IT retired for this person, audits it, and enrols nothing', async () => {
    await admitDevice(tpm, store, audit, attested('old-key'));
    const retiredAt = later(5);
    await store.decide('alice', 'old-key', 'retired', 'it-admin');
    const body = await refusal(tpm, attested('new-key'));
    expect(body).toStrictEqual({
      type: 'urn:clearance:problem:device-revoked',
      title: 'Device retired',
      status: 403,
      detail: `IT retired this device on ${retiredAt}; contact IT to enrol it again.`,
    });
    expect(await store.find('alice', 'new-key')).toBeUndefined();
    expect((await enrolmentRecords()).map((r) => r.data)).toStrictEqual([
      {
        outcome: 'refused',
        reason: 'DEVICE_REVOKED',
        jkt: 'new-key',
        policy: 'tpm',
        detail: 'a new key of the TPM whose device key old-key IT retired',
        retiredJkt: 'old-key',
        ekFingerprint: 'ek-1',
      },
    ]);
    expect((await enrolmentRecords())[0]?.subject).toBe('alice');
  });

  it('admits a new key of a TPM whose earlier key is approved, not retired', async () => {
    await admitDevice(tpm, store, audit, attested('old-key'));
    const record = await admitDevice(tpm, store, audit, attested('new-key'));
    expect(record.status).toBe('approved');
  });

  it('admits a key of another TPM', async () => {
    await admitDevice(tpm, store, audit, attested('old-key', 'ek-1'));
    await store.decide('alice', 'old-key', 'retired', 'it-admin');
    const record = await admitDevice(tpm, store, audit, attested('new-key', 'ek-2'));
    expect(record.status).toBe('approved');
  });

  it("does not hold another person's retirement against this one, even one whose username is this person's id", async () => {
    await store.upsert(
      facts({ userId: 'mallory', username: 'alice', jkt: 'old-key', ekFingerprint: 'ek-1' }),
      'approved',
    );
    await store.decide('mallory', 'old-key', 'retired', 'it-admin');
    const record = await admitDevice(tpm, store, audit, attested('new-key'));
    expect(record.status).toBe('approved');
    expect(await enrolmentRecords()).toEqual([]);
  });

  it('a device without a TPM is not matched to retired devices without one', async () => {
    await store.upsert(facts({ jkt: 'old-key' }), 'approved');
    await store.decide('alice', 'old-key', 'retired', 'it-admin');
    const record = await admitDevice(OPEN_ENROLMENT, store, audit, request({}, { jkt: 'new-key' }));
    expect(record.status).toBe('approved');
  });

  it('the retired key itself is refused as that device, seen again (its last-seen date moves) and not audited as a new key', async () => {
    await admitDevice(tpm, store, audit, attested('old-key'));
    const retiredAt = later(5);
    await store.decide('alice', 'old-key', 'retired', 'it-admin');
    const seen = later(5);
    const body = await refusal(tpm, attested('old-key'));
    expect(body.detail).toBe(`IT retired this device on ${retiredAt}; contact IT to enrol it again.`);
    expect((await store.find('alice', 'old-key'))?.lastSeenAt).toBe(seen);
    expect(await enrolmentRecords()).toEqual([]);
  });
});
