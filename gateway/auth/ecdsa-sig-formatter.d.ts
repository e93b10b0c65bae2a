/** The part of `ecdsa-sig-formatter@1` the gateway uses (the package ships no types). */
declare module 'ecdsa-sig-formatter' {
  /** A JOSE ECDSA signature (r‖s, raw or base64url) as ASN.1 DER, for `alg` (`ES256`, …); throws when its length is wrong. */
  export function joseToDer(signature: Buffer | string, alg: string): Buffer;
}
