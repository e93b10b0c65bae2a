import { extname, join, normalize, sep } from 'node:path';
import { RENDERER_CSP, RENDERER_MIME_TYPES } from './csp';

/** The host the renderer is served from: app://clearance/. */
export const RENDERER_HOST = 'clearance';

/**
 * What the app:// handler does with one request: read a file inside the renderer folder, or refuse.
 *
 * `refused` carries the status to answer with and why, for the log; nothing is read for it.
 */
export type RendererRequestDecision =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'refused'; readonly status: 400 | 403 | 404; readonly reason: string };

/** The body of each refusal: a plain word, never the path that was asked for. */
export const REFUSAL_TEXT: Readonly<Record<400 | 403 | 404, string>> = {
  400: 'Bad request',
  403: 'Forbidden',
  404: 'Not found',
};

/**
 * Resolves an app:// request URL to a file inside `rendererDir`, refusing any path outside it.
 *
 * `/` is the index page. The path is percent-decoded before it is joined, so `..%2f` cannot slip a
 * traversal past the URL parser; a malformed escape is refused rather than thrown.
 */
export function resolveRendererRequest(rendererDir: string, requestUrl: string): RendererRequestDecision {
  let url: URL;
  try {
    url = new URL(requestUrl);
  } catch {
    return { kind: 'refused', status: 400, reason: 'malformed URL' };
  }
  if (url.host !== RENDERER_HOST) return { kind: 'refused', status: 404, reason: `unknown host ${url.host}` };
  let relative: string;
  try {
    relative = decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname);
  } catch {
    return { kind: 'refused', status: 400, reason: 'malformed percent-encoding' };
  }
  if (relative.includes('\0')) return { kind: 'refused', status: 400, reason: 'NUL in path' };
  const root = normalize(rendererDir + sep);
  const file = normalize(join(root, relative));
  // Path traversal: the resolved file must stay inside the renderer folder.
  if (!file.startsWith(root)) return { kind: 'refused', status: 403, reason: 'path outside the renderer folder' };
  return { kind: 'file', path: file };
}

/**
 * The content type a renderer file is served with; unknown extensions are opaque bytes, never sniffed.
 */
export function rendererContentType(file: string): string {
  return RENDERER_MIME_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * The headers every renderer file is served with: its content type, the CSP, no sniffing, an isolated opener.
 */
export function rendererResponseHeaders(file: string): Readonly<Record<string, string>> {
  return {
    'content-type': rendererContentType(file),
    'content-security-policy': RENDERER_CSP,
    'x-content-type-options': 'nosniff',
    'cross-origin-opener-policy': 'same-origin',
  };
}
