import { net, protocol } from 'electron';
import { pathToFileURL } from 'node:url';
import { REFUSAL_TEXT, rendererResponseHeaders, resolveRendererRequest } from './rendererRequest';

/** The custom scheme the renderer is served from (not file://, which would grant the page the file system's origin). */
export const APP_SCHEME = 'app';

/**
 * Declares app:// as a standard, secure scheme. Must run before `app.whenReady()`.
 */
export function registerAppScheme(): void {
  protocol.registerSchemesAsPrivileged([
    // standard + secure: relative URLs and a secure context like https, without file:// powers.
    { scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: false, corsEnabled: false } },
  ]);
}

/**
 * Serves the built renderer from `rendererDir` at app://clearance/; `resolveRendererRequest` decides.
 */
export function serveRenderer(rendererDir: string): void {
  protocol.handle(APP_SCHEME, async (request) => {
    const decision = resolveRendererRequest(rendererDir, request.url);
    if (decision.kind === 'refused') {
      return new Response(REFUSAL_TEXT[decision.status], { status: decision.status });
    }
    const response = await net.fetch(pathToFileURL(decision.path).toString());
    if (!response.ok) return new Response('Not found', { status: 404 });
    return new Response(response.body, { status: 200, headers: { ...rendererResponseHeaders(decision.path) } });
  });
}
