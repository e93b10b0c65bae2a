/**
 * What never leaves the machine in a diagnostics bundle: tokens, keys, cookies and message text.
 *
 * Two passes: keys whose names say they hold a secret or conversation text are dropped whole, and
 * every remaining string is scanned for secret shapes (JWTs, bearer and DPoP headers, PEM blocks,
 * API keys, cookies, credentials in URLs), which are replaced with a marker naming what was removed.
 */
export const REDACTED = '[redacted]';

/** Property names whose values are secrets or message text, whatever they look like. */
const SECRET_KEYS =
  /^(?:.*token.*|.*secret.*|.*password.*|.*passphrase.*|authorization|cookie|set-cookie|dpop|d|p|q|dp|dq|qi|k|privateKey|private_key|key|apiKey|api_key|clientSecret|content|messages|message_text|prompt|draft|delta|body)$/i;

const SECRET_PATTERNS: readonly (readonly [RegExp, string])[] = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g, '[redacted private key]'],
  [/\beyJ[\w-]{5,}\.[\w-]{5,}(?:\.[\w-]*)?/g, '[redacted token]'],
  [/\b(Bearer|DPoP)\s+[\w.~+/=-]{8,}/gi, '$1 [redacted token]'],
  [/\b(?:cookie|set-cookie)\s*[:=]\s*[^\n]*/gi, 'cookie: [redacted cookie]'],
  [/\b(?:sk|rk|pk|xox[abpr])-[\w-]{10,}/g, '[redacted key]'],
  [/\b(refresh_token|access_token|id_token|code|client_secret|password)=[^&\s"]+/gi, '$1=[redacted]'],
  [/"d"\s*:\s*"[\w-]{16,}"/g, '"d":"[redacted key]"'],
  // user:password@ in a URL (an update feed or proxy with basic authentication).
  [/\b([a-z][\w+.-]*:\/\/)[^\s/@]+@/gi, '$1[redacted credentials]@'],
];

/** True for a property or setting name whose value is a secret or message text. */
export function isSecretName(name: string): boolean {
  return SECRET_KEYS.test(name);
}

/** Replaces every secret shape in a string. */
export function redactText(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/**
 * A deep copy of `value` with secret-named keys dropped and secret shapes removed from every string.
 */
export function redactValue(value: unknown, depth = 0): unknown {
  if (depth > 20) return REDACTED;
  if (typeof value === 'string') return redactText(value);
  if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      out[key] = isSecretName(key) ? REDACTED : redactValue(item, depth + 1);
    }
    return out;
  }
  return value;
}
