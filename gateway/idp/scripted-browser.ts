import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** What {@link scriptedSignIn} does on the login page. */
export type ScriptedChoice = { readonly persona: string } | { readonly cancel: true };

/** Options for {@link scriptedSignIn}. */
export interface ScriptedSignInOptions {
  /** The development provider's CA, trusted for its `https://localhost` pages only. */
  readonly caCertPem: string;
  readonly choice: ScriptedChoice;
}

/** The last response of a scripted sign-in: normally the app's loopback page. */
export interface ScriptedSignInResult {
  readonly url: string;
  readonly status: number;
  readonly body: string;
}

interface Exchange {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

const MAX_STEPS = 20;

/**
 * Plays the part of the system browser for a sign-in on the development identity provider.
 *
 * For tests: opens `authorizeUrl`, follows redirects with cookies, picks a persona by posting the
 * login form (or follows "Cancel"), then delivers the provider's response to the app's loopback
 * redirect URI, either by submitting the `form_post` page or by following the final redirect.
 * Throws with the page it stopped at when the flow goes anywhere unexpected.
 */
export async function scriptedSignIn(
  authorizeUrl: string,
  options: ScriptedSignInOptions,
): Promise<ScriptedSignInResult> {
  const cookies = new Map<string, string>();
  const providerOrigin = new URL(authorizeUrl).origin;
  let url = authorizeUrl;
  let method: 'GET' | 'POST' = 'GET';
  let form: URLSearchParams | undefined;
  let choiceMade = false;

  for (let step = 0; step < MAX_STEPS; step++) {
    const target = new URL(url);
    const toProvider = target.origin === providerOrigin;
    const response = await exchange(target, method, form, toProvider ? cookies : undefined, options.caCertPem);
    if (toProvider) rememberCookies(cookies, response.headers);
    if (!toProvider) return { url, status: response.status, body: response.body };

    const location = response.headers.location;
    if (response.status >= 300 && response.status < 400 && location) {
      url = new URL(location, target).href;
      method = 'GET';
      form = undefined;
      continue;
    }
    // The answer for the app: a form_post page (with status 400 for an error) that a browser submits all the same.
    const post = parseFormPost(response.body);
    if (post && new URL(post.action, target).origin !== providerOrigin) {
      url = post.action;
      method = 'POST';
      form = post.fields;
      continue;
    }
    if (response.status !== 200) {
      throw new Error(`Sign-in stopped at ${target.pathname} with HTTP ${response.status}: ${textOf(response.body)}`);
    }
    const interaction = /^\/interaction\/([A-Za-z0-9_-]+)$/.exec(target.pathname);
    if (interaction && !choiceMade) {
      choiceMade = true;
      if ('cancel' in options.choice) {
        url = new URL(`/interaction/${interaction[1]}/abort`, target).href;
        method = 'GET';
        form = undefined;
      } else {
        const persona = options.choice.persona;
        if (!response.body.includes(`name="persona" value="${persona}"`)) {
          throw new Error(`The login page does not offer persona "${persona}"`);
        }
        url = new URL(`/interaction/${interaction[1]}/login`, target).href;
        method = 'POST';
        form = new URLSearchParams({ persona });
      }
      continue;
    }
    throw new Error(`Sign-in stopped at ${target.pathname}: ${textOf(response.body)}`);
  }
  throw new Error(`Sign-in did not finish within ${MAX_STEPS} steps`);
}

function exchange(
  url: URL,
  method: 'GET' | 'POST',
  form: URLSearchParams | undefined,
  cookies: Map<string, string> | undefined,
  caCertPem: string,
): Promise<Exchange> {
  const body = form?.toString();
  const headers: Record<string, string> = { accept: 'text/html' };
  if (body !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    headers['content-length'] = String(Buffer.byteLength(body));
  }
  if (cookies?.size) headers.cookie = [...cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  const secure = url.protocol === 'https:';
  if (!secure && !['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)) {
    throw new Error(`Refusing to send a sign-in response over plain http to ${url.host}`);
  }
  return new Promise((resolve, reject) => {
    const req = (secure ? httpsRequest : httpRequest)(
      url,
      { method, headers, ...(secure ? { ca: caCertPem } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`No answer from ${url.host} within 10 s`)));
    req.end(body);
  });
}

function rememberCookies(cookies: Map<string, string>, headers: IncomingHttpHeaders): void {
  for (const line of headers['set-cookie'] ?? []) {
    const pair = line.split(';')[0] ?? '';
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const expired = /;\s*expires=Thu, 01 Jan 1970/i.test(line) || /;\s*max-age=0/i.test(line);
    if (expired || value === '') cookies.delete(name);
    else cookies.set(name, value);
  }
}

function parseFormPost(html: string): { action: string; fields: URLSearchParams } | undefined {
  const formTag = /<form[^>]*method="post"[^>]*action="([^"]+)"/i.exec(html);
  if (!formTag?.[1]) return undefined;
  const fields = new URLSearchParams();
  for (const input of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\s*\/?>/g)) {
    fields.append(decodeEntities(input[1] ?? ''), decodeEntities(input[2] ?? ''));
  }
  return { action: decodeEntities(formTag[1]), fields };
}

function decodeEntities(text: string): string {
  return text
    .replace(/&#(\d+);/g, (_m, code: string) => String.fromCharCode(Number(code)))
    .replace(/&#x([0-9a-f]+);/gi, (_m, code: string) => String.fromCharCode(parseInt(code, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function textOf(html: string): string {
  return html
    .replace(/<style[\s\S]*?<\/style>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 300);
}
