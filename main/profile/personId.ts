import { createHash } from 'node:crypto';

/** The parts of an MSAL account a person's identity is read from. */
export interface AccountIdentity {
  readonly homeAccountId: string;
  readonly environment: string;
  readonly idTokenClaims?: Readonly<Record<string, unknown>>;
}

function claim(claims: Readonly<Record<string, unknown>> | undefined, name: string): string | undefined {
  const value = claims?.[name];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/**
 * Who a signed-in person is, as a stable string: Entra's tenant and object id, else the issuer and subject.
 *
 * The same person always gets the same id, on any device; two people never share one. When the ID
 * token's claims are missing (an old token cache), MSAL's home account id within its environment stands
 * in: for Entra it is itself the object and tenant id, for other providers the subject.
 */
export function personIdOf(account: AccountIdentity): string {
  const claims = account.idTokenClaims;
  const tid = claim(claims, 'tid');
  const oid = claim(claims, 'oid');
  if (tid && oid) return `entra:${tid}:${oid}`;
  const iss = claim(claims, 'iss');
  const sub = claim(claims, 'sub');
  if (iss && sub) return `oidc:${iss}#${sub}`;
  return `msal:${account.environment}#${account.homeAccountId}`;
}

/** The name of a person's profile folder: a digest of their id, so folder names disclose nobody. */
export function profileFolderName(personId: string): string {
  return createHash('sha256').update(personId, 'utf8').digest('hex').slice(0, 32);
}
