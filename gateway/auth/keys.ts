import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';

/** One ES256 key the gateway signs with. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: 'ES256';
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  /** Public JWK with `kid`, `alg` and `use`, as published in the JWKS. */
  readonly publicJwk: JWK;
}

/** The gateway's public keys as `/.well-known/jwks.json` serves them. */
export interface JsonWebKeySet {
  readonly keys: readonly JWK[];
}

/**
 * The gateway's two signing keys: one for session tokens, one for entitlement documents.
 *
 * Separate keys (and `kid`s) mean a verifier that looks a key up by `kid` and checks `typ`
 * can never accept one kind of token as the other. Private keys persist as JWK files
 * (mode 0600) in `<stateDir>/keys`, created on first start.
 */
export class GatewayKeys {
  private constructor(
    readonly session: SigningKey,
    readonly entitlements: SigningKey,
  ) {}

  /** Loads both keys from `dir`, creating any that do not exist yet. */
  static async loadOrCreate(dir: string): Promise<GatewayKeys> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const session = await loadOrCreateKey(join(dir, 'session-token.private.jwk.json'));
    const entitlements = await loadOrCreateKey(join(dir, 'entitlements.private.jwk.json'));
    if (session.kid === entitlements.kid) throw new Error(`The two signing keys in ${dir} must differ`);
    return new GatewayKeys(session, entitlements);
  }

  /** Both public keys. */
  jwks(): JsonWebKeySet {
    return { keys: [this.session.publicJwk, this.entitlements.publicJwk] };
  }
}

/**
 * Loads the ES256 private key JWK at `path`, creating it (mode 0600) when absent.
 *
 * The key id is the key's JWK thumbprint (RFC 7638).
 */
export async function loadOrCreateKey(path: string): Promise<SigningKey> {
  let privateJwk: JWK;
  if (existsSync(path)) {
    try {
      privateJwk = JSON.parse(readFileSync(path, 'utf8')) as JWK;
    } catch (error) {
      throw new Error(`Signing key ${path} is unreadable (${(error as Error).message}); remove it to make a new one`, {
        cause: error,
      });
    }
    if (privateJwk.kty !== 'EC' || privateJwk.crv !== 'P-256' || !privateJwk.d) {
      throw new Error(`Signing key ${path} is not a P-256 private key; remove it to make a new one`);
    }
  } else {
    const pair = await generateKeyPair('ES256', { extractable: true });
    privateJwk = await exportJWK(pair.privateKey);
    writeFileSync(path, `${JSON.stringify(privateJwk, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  }
  const { d: _d, ...publicPart } = privateJwk;
  const kid = await calculateJwkThumbprint(publicPart, 'sha256');
  const privateKey = (await importJWK(privateJwk, 'ES256')) as CryptoKey;
  const publicKey = (await importJWK(publicPart, 'ES256')) as CryptoKey;
  const publicJwk: JWK = {
    kty: publicPart.kty,
    crv: publicPart.crv,
    x: publicPart.x,
    y: publicPart.y,
    kid,
    alg: 'ES256',
    use: 'sig',
  };
  return { kid, alg: 'ES256', privateKey, publicKey, publicJwk };
}
