import { describe, expect, it } from 'vitest';
import { randomHex } from './ids';

describe('randomHex', () => {
  it('hands out each random byte once: ids across several pool refills are all distinct and well-formed', () => {
    const ids = Array.from({ length: 2000 }, () => randomHex(12));
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{24}$/);
    expect(new Set(ids).size).toBe(ids.length);
    // Consecutive ids share no bytes (a pool reused from its start would repeat them).
    const bytes = ids.join('');
    expect(new Set(bytes.match(/.{24}/g)).size).toBe(ids.length);
    expect(randomHex(5000)).toMatch(/^[0-9a-f]{10000}$/);
  });
});
