import { describe, expect, it } from 'vitest';
import { EntitlementError } from './errors';

describe('EntitlementError', () => {
  it('carries its code, its sentence, its cause and its own name (what logs and diagnostics print)', () => {
    const cause = new Error('underlying');
    const error = new EntitlementError('SIGNATURE', 'The signature does not match.', { cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('EntitlementError');
    expect(error.code).toBe('SIGNATURE');
    expect(error.message).toBe('The signature does not match.');
    expect(error.cause).toBe(cause);
    expect(String(error)).toBe('EntitlementError: The signature does not match.');
  });
});
