// @ts-check
/**
 * electron-builder's Windows signing hook (`win.signtoolOptions.sign`): signs each file one of three
 * ways, chosen by environment variables only, so a release pipeline sets secrets and nothing else.
 *
 * 1. An HSM or any signing service: CLEARANCE_WIN_SIGN_COMMAND, a command with `{file}` where the
 *    path goes (for example a signtool call with `/csp` and `/kc` naming an HSM key).
 * 2. Azure Trusted Signing: AZURE_TRUSTED_SIGNING_DLIB (Azure.CodeSigning.Dlib.dll) and
 *    AZURE_TRUSTED_SIGNING_METADATA (its metadata.json: endpoint, account, certificate profile);
 *    the dlib authenticates with AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET.
 * 3. A certificate file: WIN_CSC_LINK (or CSC_LINK) and WIN_CSC_KEY_PASSWORD (or CSC_KEY_PASSWORD),
 *    signed with electron-builder's own signtool arguments.
 *
 * With none of them the file stays unsigned, which CLEARANCE_REQUIRE_SIGNING=1 turns into an error.
 * SIGNTOOL names signtool.exe when it is not on the PATH.
 */
import { execFileSync, execSync } from 'node:child_process';

/**
 * How to sign one file: a plan a test can read without running anything.
 *
 * @param {Readonly<Record<string, string | undefined>>} env
 * @param {string} file
 * @param {{ readonly hasCertificate: boolean; readonly certificateArgs?: readonly string[]; readonly timestampServer: string }} context
 * @returns {{ kind: 'command'; command: string } | { kind: 'signtool'; via: 'azure' | 'certificate'; args: string[] } | { kind: 'unsigned'; reason: string }}
 */
export function windowsSigningPlan(env, file, context) {
  const command = env.CLEARANCE_WIN_SIGN_COMMAND;
  if (command) {
    if (!command.includes('{file}'))
      throw new Error('CLEARANCE_WIN_SIGN_COMMAND must contain {file} where the path goes');
    return { kind: 'command', command: command.replaceAll('{file}', `"${file.replaceAll('"', '')}"`) };
  }
  const dlib = env.AZURE_TRUSTED_SIGNING_DLIB;
  const metadata = env.AZURE_TRUSTED_SIGNING_METADATA;
  if (dlib || metadata) {
    if (!dlib || !metadata) {
      throw new Error('Azure Trusted Signing needs both AZURE_TRUSTED_SIGNING_DLIB and AZURE_TRUSTED_SIGNING_METADATA');
    }
    const missing = ['AZURE_TENANT_ID', 'AZURE_CLIENT_ID', 'AZURE_CLIENT_SECRET'].filter((name) => !env[name]);
    if (missing.length > 0) throw new Error(`Azure Trusted Signing needs ${missing.join(', ')}`);
    return {
      kind: 'signtool',
      via: 'azure',
      args: [
        'sign',
        '/v',
        '/fd',
        'sha256',
        '/tr',
        context.timestampServer,
        '/td',
        'sha256',
        '/dlib',
        dlib,
        '/dmdf',
        metadata,
        file,
      ],
    };
  }
  if (context.hasCertificate && context.certificateArgs) {
    return { kind: 'signtool', via: 'certificate', args: [...context.certificateArgs] };
  }
  return { kind: 'unsigned', reason: 'no Windows signing is configured (see build/sign-windows.mjs)' };
}

/**
 * The hook electron-builder calls for every file it signs.
 *
 * @param {any} configuration electron-builder's CustomWindowsSignTaskConfiguration
 */
export async function sign(configuration) {
  const env = process.env;
  const plan = windowsSigningPlan(env, configuration.path, {
    hasCertificate: Boolean(configuration.cscInfo),
    certificateArgs: configuration.cscInfo ? configuration.computeSignToolArgs(true) : undefined,
    timestampServer: configuration.options?.signtoolOptions?.rfc3161TimeStampServer ?? 'http://timestamp.digicert.com',
  });
  if (plan.kind === 'unsigned') {
    if (env.CLEARANCE_REQUIRE_SIGNING === '1')
      throw new Error(`Refusing to ship ${configuration.path} unsigned: ${plan.reason}`);
    console.warn(`  • ${configuration.path} left unsigned: ${plan.reason}`);
    return;
  }
  // The certificate and Azure ways sign once with sha256; electron-builder calls again for sha1 on older setups.
  if (plan.kind === 'signtool' && configuration.hash !== 'sha256') return;
  if (plan.kind === 'command') execSync(plan.command, { stdio: 'inherit' });
  else execFileSync(env.SIGNTOOL ?? 'signtool.exe', plan.args, { stdio: 'inherit' });
}

export default sign;
