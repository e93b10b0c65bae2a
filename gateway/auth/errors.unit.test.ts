import { describe, expect, it } from 'vitest';
import { AuthError } from './errors';

describe('AuthError', () => {
  it('is a DPoP 401 by default, carrying the code and the detail', () => {
    const error = new AuthError('invalid_token', 'The device key of this token has been revoked');
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('AuthError');
    expect(error.error).toBe('invalid_token');
    expect(error.detail).toBe('The device key of this token has been revoked');
    expect(error.message).toBe('The device key of this token has been revoked');
    expect(error.scheme).toBe('DPoP');
    expect(error.status).toBe(401);
  });

  it('keeps the scheme and status it is given (a Bearer challenge, a 400)', () => {
    const error = new AuthError('invalid_request', 'Malformed Authorization header', 'Bearer', 400);
    expect(error.error).toBe('invalid_request');
    expect(error.scheme).toBe('Bearer');
    expect(error.status).toBe(400);
    expect(String(error)).toBe('AuthError: Malformed Authorization header');
  });
});
