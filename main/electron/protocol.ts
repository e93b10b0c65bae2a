import { net, protocol } from 'electron';
import { extname, join, normalize, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RENDERER_CSP, RENDERER_MIME_TYPES } from './csp';

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
 * Serves the built renderer from `rendererDir` at app://clearance/, refusing any path outside it.
 */
export function serveRenderer(rendererDir: string): void {
  const root = normalize(rendererDir + sep);
  protocol.handle(APP_SCHEME, async (request) => {
    const url = new URL(request.url);
    if (url.host !== 'clearance') return new Response('Not found', { status: 404 });
    const relative = decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname);
    const file = normalize(join(root, relative));
    // Path traversal: the resolved file must stay inside the renderer folder.
    if (!file.startsWith(root)) return new Response('Forbidden', { status: 403 });
    const response = await net.fetch(pathToFileURL(file).toString());
    if (!response.ok) return new Response('Not found', { status: 404 });
    return new Response(response.body, {
      status: 200,
      headers: {
        'content-type': RENDERER_MIME_TYPES[extname(file)] ?? 'application/octet-stream',
        'content-security-policy': RENDERER_CSP,
        'x-content-type-options': 'nosniff',
        'cross-origin-opener-policy': 'same-origin',
      },
    });
  });
}
