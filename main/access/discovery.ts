import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DiscoveryDocument } from '../../shared/discovery';
import { writeFileAtomic } from '../storage/atomicFile';
import type { AppPaths, HttpClient } from '../platform';
import { discoveryTransportProblems, requireSecureTransport } from '../session/transport';

const DISCOVERY_FILE = 'gateway-discovery.json';

/** The discovery document and where it came from. */
export interface DiscoveryRead {
  readonly document: DiscoveryDocument;
  readonly fromCache: boolean;
}

/**
 * Reads the gateway's discovery document, falling back to the last one seen when the gateway is unreachable.
 *
 * Discovery is public (no secrets), so the cached copy is plain JSON; it is still parsed with the
 * contract's schema before use. Every URL, the gateway's own and each one discovery names, must be
 * https in the installed app (`packaged`); a development build may use loopback http.
 */
export async function loadDiscovery(
  gatewayUrl: string,
  http: HttpClient,
  paths: AppPaths,
  packaged = false,
): Promise<DiscoveryRead> {
  requireSecureTransport(gatewayUrl, 'The gateway URL (managed setting gatewayUrl)', packaged);
  const checked = (document: DiscoveryDocument): DiscoveryDocument => {
    const problems = discoveryTransportProblems(document, packaged);
    if (problems.length > 0) throw new InsecureDiscoveryError(problems.join(' '));
    return document;
  };
  const cacheFile = join(paths.userData, DISCOVERY_FILE);
  const url = new URL('.well-known/clearance', gatewayUrl.endsWith('/') ? gatewayUrl : `${gatewayUrl}/`);
  let failure: string;
  try {
    const response = await http(url, { signal: AbortSignal.timeout(10_000), headers: { accept: 'application/json' } });
    if (!response.ok) throw new Error(`it answered HTTP ${response.status}`);
    const parsed = DiscoveryDocument.safeParse(await response.json());
    if (!parsed.success) throw new Error('its discovery document is not in the form Clearance expects');
    checked(parsed.data);
    await mkdir(paths.userData, { recursive: true });
    await writeFileAtomic(cacheFile, Buffer.from(JSON.stringify(parsed.data)));
    return { document: parsed.data, fromCache: false };
  } catch (error) {
    if (error instanceof InsecureDiscoveryError) throw error;
    failure = error instanceof Error ? error.message : String(error);
  }
  try {
    const cached = DiscoveryDocument.parse(JSON.parse(await readFile(cacheFile, 'utf8')));
    return { document: checked(cached), fromCache: true };
  } catch (error) {
    if (error instanceof InsecureDiscoveryError) throw error;
    throw new Error(
      `Clearance cannot reach your organisation's gateway at ${gatewayUrl} (${failure}). Check your network and try again.`,
      { cause: error },
    );
  }
}

/** Discovery names a URL the app may not use: never replaced by the cached copy. */
class InsecureDiscoveryError extends Error {}
