import { createHash } from 'node:crypto';
import type { Persona } from './personas';

/** A page of the development identity provider: its HTML and the headers that go with it. */
export interface ProviderPage {
  readonly status: number;
  readonly html: string;
  readonly headers: Readonly<Record<string, string>>;
}

const STYLE = `
:root { color-scheme: light dark; --bg: #f4f5f7; --card: #fff; --text: #1b1f24; --muted: #57606a; --line: #d0d7de;
  --accent: #0b5cad; --accent-bg: #eef4fb; --warn-bg: #fff4d6; --warn-text: #5c3c00; --chip: #eaeef2; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0f1419; --card: #1a2027; --text: #e6edf3; --muted: #9aa5b1; --line: #30363d;
    --accent: #6cb6ff; --accent-bg: #1d2b3a; --warn-bg: #3a2e0d; --warn-text: #f5d68a; --chip: #2a313a; }
}
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: flex; align-items: flex-start; justify-content: center;
  background: var(--bg); color: var(--text); padding: 48px 16px;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Ubuntu, Cantarell, sans-serif; }
main { width: 100%; max-width: 640px; background: var(--card); border: 1px solid var(--line); border-radius: 12px;
  padding: 28px 32px; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
.notice { margin: 0 0 20px; padding: 8px 12px; border-radius: 8px; background: var(--warn-bg); color: var(--warn-text);
  font-size: 14px; }
h1 { font-size: 24px; margin: 0 0 4px; }
p.lead { margin: 0 0 20px; color: var(--muted); }
ul.personas { list-style: none; margin: 0 0 20px; padding: 0; display: grid; gap: 10px; }
button.persona { width: 100%; text-align: left; cursor: pointer; font: inherit; color: inherit; background: var(--card);
  border: 1px solid var(--line); border-radius: 10px; padding: 12px 16px; display: grid; gap: 2px; }
button.persona:hover { border-color: var(--accent); background: var(--accent-bg); }
button.persona:focus-visible, a:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.name { font-weight: 600; }
.username { color: var(--muted); font-size: 14px; }
.description { font-size: 15px; }
.groups { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 4px; font-size: 13px; color: var(--muted); }
.chip { background: var(--chip); border-radius: 999px; padding: 0 8px; color: var(--text); }
.error { margin: 0 0 16px; padding: 8px 12px; border-radius: 8px; border: 1px solid #cf222e; color: inherit; }
a { color: var(--accent); }
.footer { display: flex; justify-content: space-between; gap: 12px; flex-wrap: wrap; font-size: 14px; color: var(--muted); }
code { font-size: 13px; }
`;

const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');

/** Headers for every page: no scripts at all, the one stylesheet by hash, forms only back to this origin. */
const PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': [
    "default-src 'none'",
    `style-src 'sha256-${STYLE_HASH}'`,
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
});

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function layout(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<p class="notice" role="note">Development identity provider: demo people only, for trying Clearance. Never use it for real accounts.</p>
${body}
</main>
</body>
</html>
`;
}

/** Options for {@link renderLoginPage}. */
export interface LoginPageOptions {
  readonly uid: string;
  readonly personas: readonly Persona[];
  readonly clientName: string;
  readonly error?: string;
}

/**
 * The sign-in page: one button per persona, whose accessible name begins with the persona's name.
 *
 * A single form posts `persona=<id>` to `/interaction/<uid>/login`; "Cancel" ends the request
 * with `access_denied`, which the app shows as a cancelled sign-in.
 */
export function renderLoginPage(options: LoginPageOptions): ProviderPage {
  const uid = encodeURIComponent(options.uid);
  const rows = options.personas
    .map(
      (persona) => `<li><button class="persona" type="submit" name="persona" value="${escapeHtml(persona.id)}">
<span class="name">${escapeHtml(persona.name)}</span>
<span class="username">${escapeHtml(persona.username)}</span>
<span class="description">${escapeHtml(persona.description)}</span>
<span class="groups">Groups:${persona.groups.map((g) => ` <span class="chip">${escapeHtml(g)}</span>`).join('')}</span>
</button></li>`,
    )
    .join('\n');
  const error = options.error ? `<p class="error" role="alert">${escapeHtml(options.error)}</p>` : '';
  const body = `<h1>Sign in to ${escapeHtml(options.clientName)}</h1>
<p class="lead">Choose who to sign in as. Each person shows a different case of the export-control directive.</p>
${error}<form method="post" action="/interaction/${uid}/login">
<ul class="personas">
${rows}
</ul>
</form>
<div class="footer"><a href="/interaction/${uid}/abort">Cancel and return to ${escapeHtml(options.clientName)}</a>
<span>No password: this provider trusts whoever uses this computer.</span></div>`;
  return {
    status: options.error ? 400 : 200,
    html: layout(`Sign in to ${options.clientName}`, body),
    headers: PAGE_HEADERS,
  };
}

/** A page that explains a failed or expired request and what to do next. */
export function renderMessagePage(status: number, title: string, message: string, detail?: string): ProviderPage {
  const body = `<h1>${escapeHtml(title)}</h1>
<p class="lead">${escapeHtml(message)}</p>
${detail ? `<p><code>${escapeHtml(detail)}</code></p>` : ''}`;
  return { status, html: layout(title, body), headers: PAGE_HEADERS };
}
