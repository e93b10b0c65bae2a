import { describe, expect, it } from 'vitest';
import { connectionLostError, errorFromProblem, plainError } from './gatewayErrors';

describe('plain error messages', () => {
  it('moves addresses, ports and error codes out of the sentence into the details', () => {
    const error = plainError({
      code: 'GATEWAY_UNAVAILABLE',
      message: 'The gateway at http://127.0.0.1:43123 is not reachable (connect ECONNREFUSED 127.0.0.1:43123).',
    });
    expect(error.message).toBe('Clearance lost its connection to the gateway. Try again once it is back.');
    expect(error.detail).toContain('ECONNREFUSED');
    expect(error.detail).toContain('http://127.0.0.1:43123');
  });

  it('keeps a sentence that is already plain, words like "ended" included', () => {
    const plain = {
      code: 'GATEWAY_UNAVAILABLE' as const,
      message: 'The gateway ended the reply before it was finished.',
    };
    expect(plainError(plain)).toBe(plain);
  });

  it('says a lost connection plainly and keeps what the network said as detail', () => {
    const error = connectionLostError(new TypeError('terminated', { cause: new Error('other side closed') }));
    expect(error.message).not.toMatch(/closed|terminated/);
    expect(error.detail).toBe('terminated (other side closed)');
  });
});

describe('errorFromProblem', () => {
  it('keeps the rule that cut a reply next to its reason', () => {
    const { error, decisionId } = errorFromProblem({
      type: 'https://clearance.lab.example/problems/model-denied',
      status: 403,
      reason: 'MODEL_SUSPENDED',
      policy: 'ec-2026-11-withdrawn',
      message: 'Mythos 5 is withdrawn for everyone while directive EC-2026-11 is reviewed.',
      decisionId: 'dec-1',
    });
    expect(error).toEqual({
      code: 'MODEL_DENIED',
      reason: 'MODEL_SUSPENDED',
      policy: 'ec-2026-11-withdrawn',
      message: 'Mythos 5 is withdrawn for everyone while directive EC-2026-11 is reviewed.',
    });
    expect(decisionId).toBe('dec-1');
  });

  it('names no rule when the problem has no known reason', () => {
    const { error } = errorFromProblem({ status: 500, policy: 'made-up', message: 'Upstream failed.' });
    expect(error.policy).toBeUndefined();
    expect(error.code).toBe('GATEWAY_UNAVAILABLE');
  });
});
