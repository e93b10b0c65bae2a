import { SignJWT } from 'jose';
import { ENTITLEMENTS_TYP, EntitlementDocument } from '../../shared/entitlements';
import type { EntitlementContent } from '../access';
import type { SigningKey } from './keys';

/** How long an entitlement document is valid. */
export const ENTITLEMENTS_LIFETIME_SECONDS = 600;

/**
 * Signs entitlement documents (`typ: entitlements+jwt`) with the gateway's entitlement key.
 *
 * The claims are checked against the shared `EntitlementDocument` schema before signing,
 * so the gateway can never send a document the client would refuse.
 */
export class EntitlementSigner {
  constructor(
    private readonly key: SigningKey,
    private readonly issuer: string,
  ) {}

  /** Returns the compact JWS and the claims it carries. */
  async sign(content: EntitlementContent): Promise<{ jws: string; document: EntitlementDocument }> {
    const iat = Math.floor(Date.now() / 1000);
    const document = EntitlementDocument.parse({
      ...content,
      iss: this.issuer,
      iat,
      exp: iat + ENTITLEMENTS_LIFETIME_SECONDS,
    });
    const jws = await new SignJWT({ ...document })
      .setProtectedHeader({ alg: this.key.alg, typ: ENTITLEMENTS_TYP, kid: this.key.kid })
      .sign(this.key.privateKey);
    return { jws, document };
  }
}
