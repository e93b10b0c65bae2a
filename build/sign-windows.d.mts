/** What {@link windowsSigningPlan} decides for one file. */
export type WindowsSigningPlan =
  | { kind: 'command'; command: string }
  | { kind: 'signtool'; via: 'azure' | 'certificate'; args: string[] }
  | { kind: 'unsigned'; reason: string };

/** How to sign one file, from environment variables only. */
export function windowsSigningPlan(
  env: Readonly<Record<string, string | undefined>>,
  file: string,
  context: {
    readonly hasCertificate: boolean;
    readonly certificateArgs?: readonly string[];
    readonly timestampServer: string;
  },
): WindowsSigningPlan;

/** The hook electron-builder calls for every file it signs. */
export function sign(configuration: unknown): Promise<void>;
export default sign;
