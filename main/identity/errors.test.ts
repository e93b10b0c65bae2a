import { AuthError, InteractionRequiredAuthError, ServerError } from '@azure/msal-node';
import { describe, expect, it } from 'vitest';
import { explainFailure, IdentityError, IdentityNetworkError } from './errors';

describe('explainFailure', () => {
  it('treats interaction_required during renewal as a sign-out with a plain message', () => {
    const { error, effect } = explainFailure(new InteractionRequiredAuthError('interaction_required', ''), 'renewal');
    expect(effect).toBe('sign-out');
    expect(error).toBeInstanceOf(IdentityError);
    expect(error.code).toBe('NOT_SIGNED_IN');
    expect(error.message).toBe('Your sign-in has expired or was ended. Sign in again to continue.');
  });

  it('explains access_denied as a cancelled or refused sign-in', () => {
    const { error, effect } = explainFailure(
      new ServerError('access_denied', '', 'End-User aborted interaction'),
      'sign-in',
    );
    expect(effect).toBe('none');
    expect(error).toMatchObject({ code: 'SIGN_IN_FAILED', providerCode: 'access_denied' });
    expect(error.message).toMatch(/cancelled or refused in the browser/);
  });

  it('explains invalid_grant as an expired or revoked sign-in', () => {
    const { error, effect } = explainFailure(
      new ServerError('invalid_grant', '', 'grant request is invalid'),
      'renewal',
    );
    expect(effect).toBe('sign-out');
    expect(error.message).toBe('Your sign-in has expired or was revoked. Sign in again to continue.');
  });

  it('never signs out for network trouble, and names an untrusted certificate', () => {
    const refused = explainFailure(
      new IdentityNetworkError('https://login.example/token', 'ECONNREFUSED', 'connect ECONNREFUSED'),
      'renewal',
    );
    expect(refused.effect).toBe('none');
    expect(refused.error.code).toBe('IDENTITY_PROVIDER_UNREACHABLE');
    expect(refused.error.message).toMatch(/could not reach the sign-in service at login\.example/);

    const untrusted = explainFailure(
      new IdentityNetworkError('https://login.example/token', 'SELF_SIGNED_CERT_IN_CHAIN', 'self-signed'),
      'sign-in',
    );
    expect(untrusted.error.message).toMatch(/certificate this computer does not trust/);
    expect(explainFailure(new AuthError('network_error', ''), 'renewal').effect).toBe('none');
  });

  it('maps Entra error numbers to what the person or IT can do', () => {
    const notAssigned = new ServerError(
      'invalid_grant',
      '',
      "AADSTS50105: The signed in user 'x' is not assigned to a role for the application",
    );
    expect(explainFailure(notAssigned, 'sign-in').error.message).toMatch(/not assigned to Clearance/);
    const blocked = new ServerError(
      'access_denied',
      '',
      'AADSTS53003: Access has been blocked by Conditional Access policies',
    );
    expect(explainFailure(blocked, 'renewal')).toMatchObject({ effect: 'sign-out', error: { code: 'NOT_SIGNED_IN' } });
    expect(explainFailure(blocked, 'renewal').error.message).toMatch(/access policy blocked/);
    const redirect = new ServerError('invalid_request', '', 'AADSTS50011: The redirect URI does not match');
    expect(explainFailure(redirect, 'sign-in').error.message).toMatch(/redirect URI http:\/\/localhost/);
  });

  it('reports provider misconfiguration without echoing tokens', () => {
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhdmVyeSIsImV4cCI6MX0.c2lnbmF0dXJlc2lnbmF0dXJl';
    const { error } = explainFailure(new ServerError('unknown_thing', '', `bad token ${jwt}`), 'sign-in');
    expect(error.message).not.toContain(jwt);
    expect(error.message).toContain('[token]');
    expect(explainFailure(new ServerError('invalid_client', ''), 'sign-in').error.message).toMatch(
      /not set up correctly/,
    );
  });

  it('passes an IdentityError through unchanged', () => {
    const original = new IdentityError('SIGN_IN_CANCELLED', 'Sign-in was cancelled.');
    expect(explainFailure(original, 'sign-in').error).toBe(original);
  });
});
