/**
 * Pages MSAL's loopback listener shows in the browser once the identity provider has answered.
 *
 * Served without a content type by MSAL, so they are complete, self-contained HTML documents;
 * no scripts, no external assets.
 */
function page(title: string, message: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
</head>
<body style="margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:#f4f5f7;color:#1b1f24">
<main style="max-width:480px;margin:16px;padding:28px 32px;background:#fff;border:1px solid #d0d7de;border-radius:12px">
<h1 style="font-size:22px;margin:0 0 8px">${title}</h1>
<p style="margin:0">${message}</p>
</main>
</body>
</html>`;
}

/** Shown after a successful sign-in. */
export const SIGN_IN_SUCCESS_PAGE = page(
  'You are signed in to Clearance',
  'You can close this tab and return to Clearance.',
);

/** Shown when the identity provider answered with an error (including a cancelled sign-in). */
export const SIGN_IN_ERROR_PAGE = page(
  'Sign-in did not complete',
  'Return to Clearance to see what happened and to try again. You can close this tab.',
);
