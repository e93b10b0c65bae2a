/**
 * TPM 2.0 marshalling primitives (Library Part 1 §4: big-endian integers, `TPM2B_*` sized buffers) for
 * tests that build TPM structures byte by byte instead of asking a TPM.
 */
export const u16 = (n: number): Buffer => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
export const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
export const u64 = (n: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
};
/** A `TPM2B_*`: the size as a u16, then the bytes. */
export const sized = (bytes: Uint8Array): Buffer => Buffer.concat([u16(bytes.length), bytes]);
export const cat = (...parts: Uint8Array[]): Buffer => Buffer.concat(parts);
