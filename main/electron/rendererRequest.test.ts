import { join, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RENDERER_CSP } from './csp';
import {
  REFUSAL_TEXT,
  RENDERER_HOST,
  rendererContentType,
  rendererResponseHeaders,
  resolveRendererRequest,
} from './rendererRequest';

const root = join(sep, 'opt', 'Clearance', 'resources', 'renderer');

describe('resolveRendererRequest', () => {
  it('serves the index page for the root path', () => {
    expect(resolveRendererRequest(root, 'app://clearance/')).toEqual({ kind: 'file', path: join(root, 'index.html') });
  });

  it('resolves a nested asset inside the renderer folder', () => {
    expect(resolveRendererRequest(root, 'app://clearance/assets/index-abc.js')).toEqual({
      kind: 'file',
      path: join(root, 'assets', 'index-abc.js'),
    });
  });

  it('decodes percent-escapes in a name that stays inside the folder', () => {
    expect(resolveRendererRequest(root, 'app://clearance/assets/a%20b.css')).toEqual({
      kind: 'file',
      path: join(root, 'assets', 'a b.css'),
    });
  });

  it('refuses an encoded ../ that would leave the renderer folder, with 403', () => {
    for (const url of [
      'app://clearance/..%2f..%2f..%2fetc%2fpasswd',
      'app://clearance/assets/..%2f..%2f..%2f..%2fetc/passwd',
      'app://clearance/%2e%2e%2f%2e%2e%2fsecret',
    ]) {
      expect(resolveRendererRequest(root, url)).toEqual({
        kind: 'refused',
        status: 403,
        reason: 'path outside the renderer folder',
      });
    }
  });

  it('refuses a sibling folder whose name merely starts with the renderer folder name', () => {
    // `/opt/Clearance/resources/renderer-evil/x` starts with `.../renderer` but not with `.../renderer/`.
    const decision = resolveRendererRequest(root, 'app://clearance/..%2frenderer-evil%2fx.js');
    expect(decision).toMatchObject({ kind: 'refused', status: 403 });
  });

  it('refuses the renderer folder itself (a directory, not a file)', () => {
    expect(resolveRendererRequest(root, 'app://clearance/assets%2f..')).toMatchObject({ kind: 'refused', status: 403 });
  });

  it('answers 404 for any host other than the renderer host', () => {
    expect(RENDERER_HOST).toBe('clearance');
    expect(resolveRendererRequest(root, 'app://evil/index.html')).toEqual({
      kind: 'refused',
      status: 404,
      reason: 'unknown host evil',
    });
    expect(resolveRendererRequest(root, 'app://clearance.evil/index.html')).toMatchObject({
      kind: 'refused',
      status: 404,
    });
  });

  it('answers 400 for a malformed escape or a NUL byte instead of throwing', () => {
    expect(resolveRendererRequest(root, 'app://clearance/%E0%A4%A')).toEqual({
      kind: 'refused',
      status: 400,
      reason: 'malformed percent-encoding',
    });
    expect(resolveRendererRequest(root, 'app://clearance/index.html%00.png')).toEqual({
      kind: 'refused',
      status: 400,
      reason: 'NUL in path',
    });
  });

  it('answers 400 for a string that is not a URL', () => {
    expect(resolveRendererRequest(root, 'not a url')).toEqual({
      kind: 'refused',
      status: 400,
      reason: 'malformed URL',
    });
  });

  it('words each refusal plainly without echoing the path', () => {
    expect(REFUSAL_TEXT).toEqual({ 400: 'Bad request', 403: 'Forbidden', 404: 'Not found' });
  });
});

describe('rendererContentType', () => {
  it('maps the built file types and never sniffs unknown ones', () => {
    expect(rendererContentType('/r/index.html')).toBe('text/html; charset=utf-8');
    expect(rendererContentType('/r/assets/APP.JS')).toBe('text/javascript; charset=utf-8');
    expect(rendererContentType('/r/assets/app.css')).toBe('text/css; charset=utf-8');
    expect(rendererContentType('/r/favicon.svg')).toBe('image/svg+xml');
    expect(rendererContentType('/r/archive.tar')).toBe('application/octet-stream');
    expect(rendererContentType('/r/noextension')).toBe('application/octet-stream');
  });
});

describe('rendererResponseHeaders', () => {
  it('sends the CSP, nosniff and an isolated opener with every file', () => {
    expect(rendererResponseHeaders('/r/index.html')).toEqual({
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': RENDERER_CSP,
      'x-content-type-options': 'nosniff',
      'cross-origin-opener-policy': 'same-origin',
    });
    expect(RENDERER_CSP.startsWith("default-src 'none'")).toBe(true);
  });
});
