/** One challenge of a `WWW-Authenticate` header: its scheme and its auth-params (names lower-cased). */
export interface AuthenticationChallenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/** A claims challenge: the decoded claims request (JSON text) the resource asks the token to satisfy. */
export interface ClaimsChallenge {
  readonly scheme: string;
  readonly claims: string;
}

/**
 * Parses a `WWW-Authenticate` header into its challenges (RFC 9110 §11.6.1).
 *
 * Handles several challenges in one header, quoted strings with escapes, and `token68`
 * credentials; malformed parts are skipped rather than guessed at.
 */
export function parseWwwAuthenticate(header: string): AuthenticationChallenge[] {
  const challenges: { scheme: string; params: Record<string, string> }[] = [];
  let i = 0;
  const n = header.length;
  const skipSpace = () => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const readToken = () => {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(header[i] ?? '')) i++;
    return header.slice(start, i);
  };
  const readQuoted = () => {
    let value = '';
    i++;
    while (i < n && header[i] !== '"') {
      if (header[i] === '\\' && i + 1 < n) i++;
      value += header[i];
      i++;
    }
    i++;
    return value;
  };

  while (i < n) {
    skipSpace();
    if (header[i] === ',') {
      i++;
      continue;
    }
    const token = readToken();
    if (!token) {
      i++;
      continue;
    }
    skipSpace();
    const current = challenges[challenges.length - 1];
    if (header[i] === '=' && current) {
      i++;
      skipSpace();
      const value = header[i] === '"' ? readQuoted() : readToken();
      current.params[token.toLowerCase()] = value;
      continue;
    }
    challenges.push({ scheme: token, params: {} });
    // A token68 credential after the scheme (e.g. `Basic abc==`) carries no params: skip it.
    const token68 = /^[A-Za-z0-9\-._~+/]+=*\s*(,|$)/.exec(header.slice(i));
    if (token68) i += token68[0].length;
  }
  return challenges;
}

/**
 * Finds a claims challenge (`error="insufficient_claims"` with a base64 `claims` param) in a `WWW-Authenticate` header.
 *
 * Answers the decoded claims JSON, or undefined when the header holds no such challenge or its
 * claims are not base64 of a JSON object.
 */
export function parseClaimsChallenge(header: string): ClaimsChallenge | undefined {
  for (const challenge of parseWwwAuthenticate(header)) {
    const { error, claims } = challenge.params;
    if (error !== 'insufficient_claims' || !claims) continue;
    const decoded = decodeClaims(claims);
    if (decoded) return { scheme: challenge.scheme, claims: decoded };
  }
  return undefined;
}

function decodeClaims(value: string): string | undefined {
  if (!/^[A-Za-z0-9+/_-]+=*$/.test(value) || value.length > 16_384) return undefined;
  const text = Buffer.from(value, 'base64').toString('utf8');
  try {
    const parsed = JSON.parse(text) as unknown;
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? JSON.stringify(parsed) : undefined;
  } catch {
    return undefined;
  }
}
