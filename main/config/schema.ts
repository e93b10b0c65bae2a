import { z } from 'zod';
import { LockableSetting } from '../../shared/managedPolicy';

/** The preference domain (macOS), registry key (Windows) and folder (Linux) IT's settings live in. */
export const POLICY_STORES = {
  darwinDomain: 'com.lab.clearance',
  registryKey: 'SOFTWARE\\Policies\\Clearance',
  linuxDir: '/etc/clearance',
} as const;

/** Which policy store may set a key: only the machine's, or also the signed-in user's (machine wins). */
export type PolicyScope = 'machine' | 'machine-or-user';

/** Where a key appears in Group Policy, Intune and the docs. */
export type PolicyCategory = 'connection' | 'sign-in' | 'updates' | 'privacy' | 'user-settings' | 'support';

/** What IT reads about a key in the templates and docs; the zod type says what values it takes. */
export interface PolicyKeyMeta {
  /** A short name (Group Policy's display name). */
  readonly title: string;
  /** One or two sentences for IT: what it does and when to set it. */
  readonly description: string;
  readonly scope: PolicyScope;
  readonly category: PolicyCategory;
  /** A value shown in the example profile and JSON file. */
  readonly example: unknown;
}

/** Display names of the categories, in the order the templates list them. */
export const POLICY_CATEGORIES: Readonly<Record<PolicyCategory, string>> = {
  connection: 'Connection',
  'sign-in': 'Sign-in',
  updates: 'Updates',
  privacy: 'Privacy',
  'user-settings': 'User settings',
  support: 'Support',
};

/** Settings a person can change in the app, and which IT can therefore lock. */
export const LOCKABLE_SETTINGS = LockableSetting.options;

const key = <T extends z.ZodType>(schema: T, meta: PolicyKeyMeta) => schema.meta({ ...meta }).optional();

const hostName = z
  .string()
  .regex(
    /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i,
    'must be a host name such as help.lab.example',
  );

/**
 * Every setting IT can deploy, in every store (the single source of the templates and the docs).
 *
 * Each key has the same name in the registry, the managed preferences domain and the JSON file.
 */
export const ManagedConfig = z
  .object({
    gatewayUrl: key(z.url({ protocol: /^https?$/ }), {
      title: 'Gateway URL',
      description:
        'The URL of your organisation’s Clearance gateway. The only setting a managed laptop needs: sign-in, device rules and the support contact come from the gateway.',
      scope: 'machine',
      category: 'connection',
      example: 'https://clearance-gateway.lab.example',
    }),
    externalHosts: key(z.array(hostName).max(100), {
      title: 'Allowed external hosts',
      description:
        'Extra https hosts the app may open in the system browser (for example your help desk or access-request portal). The identity provider and the links in signed entitlements are always allowed.',
      scope: 'machine',
      category: 'connection',
      example: ['help.lab.example'],
    }),
    pinnedEntitlementKeys: key(z.array(z.record(z.string(), z.unknown())).min(1).max(10), {
      title: 'Pinned entitlement signing keys',
      description:
        'Public keys (JWK objects) the entitlement document must be signed with, instead of the keys the gateway publishes. In the registry: the JSON array as text.',
      scope: 'machine',
      category: 'connection',
      example: [{ kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo', kid: 'ent-2026' }],
    }),
    tpmTcti: key(
      z
        .string()
        .trim()
        .max(200)
        .regex(/^(device|tabrmd|swtpm|mssim)(:[\w./=,:-]*)?$/, 'must be a tpm2-tools TCTI such as device:/dev/tpmrm0'),
      {
        title: 'TPM connection (Linux)',
        description:
          'How the app reaches the TPM 2.0 that holds the device key, as a tpm2-tools TCTI, when it is not the kernel resource manager (device:/dev/tpmrm0, the default when that device exists), for example tabrmd for the TPM access broker. Linux only.',
        scope: 'machine',
        category: 'connection',
        example: 'device:/dev/tpmrm0',
      },
    ),
    deviceCertificateIssuer: key(z.string().trim().min(1).max(256), {
      title: 'Device certificate issuer',
      description:
        'When the gateway requires a managed-device certificate, the CA that issues it (its common name, or its full distinguished name): the app presents only a valid certificate from this issuer, and only to the gateway. Unset: the most recently issued valid certificate among those the gateway’s CA list matches.',
      scope: 'machine',
      category: 'connection',
      example: 'Lab Device CA',
    }),
    authority: key(z.url({ protocol: /^https$/ }), {
      title: 'Sign-in authority',
      description:
        'Overrides the identity provider the gateway names: the Entra authority with your tenant ID, or the issuer URL of another OpenID Connect provider.',
      scope: 'machine',
      category: 'sign-in',
      example: 'https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000',
    }),
    clientId: key(z.string().trim().min(1).max(200), {
      title: 'Sign-in client ID',
      description: 'Overrides the application (client) ID the gateway names for sign-in.',
      scope: 'machine',
      category: 'sign-in',
      example: '11111111-1111-1111-1111-111111111111',
    }),
    allowBasicTextTokenCache: key(z.boolean(), {
      title: 'Remember sign-in without a keyring (Linux)',
      description:
        'Keep sign-in between sessions on Linux machines whose secret store is basic_text (no keyring). Off by default: users then sign in each session.',
      scope: 'machine',
      category: 'sign-in',
      example: false,
    }),
    updatePolicy: key(z.enum(['off', 'notify', 'auto']), {
      title: 'Update policy',
      description:
        'off: never check for updates (IT deploys them); notify: check and tell the user; auto: download and install on restart.',
      scope: 'machine',
      category: 'updates',
      example: 'notify',
    }),
    updateUrl: key(z.url({ protocol: /^https$/ }), {
      title: 'Update URL',
      description: 'Where the app looks for updates (your internal mirror of the release feed).',
      scope: 'machine',
      category: 'updates',
      example: 'https://updates.lab.example/clearance/',
    }),
    updateChannel: key(z.enum(['stable', 'beta']), {
      title: 'Update channel',
      description: 'Which releases the app updates to: stable, or beta for pilot groups.',
      scope: 'machine',
      category: 'updates',
      example: 'stable',
    }),
    telemetry: key(z.enum(['off', 'errors']), {
      title: 'Telemetry',
      description:
        'off: the app sends no usage data and no error reports; errors: error reports may be sent to your gateway. Clearance sends no usage data in any case.',
      scope: 'machine',
      category: 'privacy',
      example: 'off',
    }),
    theme: key(z.enum(['system', 'light', 'dark']), {
      title: 'Colour theme',
      description:
        'The colour theme: follow the system, light or dark. A default the user can change unless it is locked.',
      scope: 'machine-or-user',
      category: 'user-settings',
      example: 'system',
    }),
    spellCheck: key(z.boolean(), {
      title: 'Spell check',
      description: 'Spell check while typing a message. A default the user can change unless it is locked.',
      scope: 'machine-or-user',
      category: 'user-settings',
      example: true,
    }),
    spellCheckDictionaryUrl: key(z.url({ protocol: /^https$/ }), {
      title: 'Spell-check dictionary source',
      description:
        'Where the app downloads spell-check dictionaries on Linux and Windows without system dictionaries (your internal mirror). Not set: Electron’s default source. To turn spell check off, set spellCheck to false and lock it.',
      scope: 'machine',
      category: 'user-settings',
      example: 'https://dictionaries.lab.example/hunspell/',
    }),
    locks: key(z.array(z.string()).max(20), {
      title: 'Locked settings',
      description: `Settings the user cannot change in the app (${LOCKABLE_SETTINGS.join(', ')}); the app shows them as managed by your organisation. Names of other settings are reported on the Policies page and ignored.`,
      scope: 'machine',
      category: 'user-settings',
      example: ['theme', 'spellCheck'],
    }),
    supportContact: key(z.string().trim().min(1).max(300), {
      title: 'Support contact',
      description:
        'Who users should contact (shown on the device and error screens), instead of the contact the gateway names.',
      scope: 'machine-or-user',
      category: 'support',
      example: 'IT Service Desk, +44 20 7946 0000, https://help.lab.example',
    }),
  })
  .strict();
/** The managed settings that applied, each key at most once. */
export type ManagedConfig = z.infer<typeof ManagedConfig>;
/** A managed setting's name. */
export type ManagedKey = keyof ManagedConfig;

/** The managed keys in schema order. */
export const MANAGED_KEYS = Object.keys(ManagedConfig.shape) as readonly ManagedKey[];

/** The metadata of a managed key (title, description, scope, category, example). */
export function keyMeta(name: ManagedKey): PolicyKeyMeta {
  const meta = ManagedConfig.shape[name].unwrap().meta() as PolicyKeyMeta | undefined;
  // Stryker disable next-line StringLiteral: unreachable, every key is built by key(), which always sets its metadata
  if (!meta) throw new Error(`Managed key ${name} has no metadata`);
  return meta;
}

/** How a key's value is stored: what the registry and the property list hold. */
export type PolicyValueKind =
  | { readonly kind: 'string' }
  | { readonly kind: 'boolean' }
  | { readonly kind: 'enum'; readonly values: readonly string[] }
  | { readonly kind: 'string-list'; readonly values?: readonly string[] }
  | { readonly kind: 'json' };

interface JsonSchemaNode {
  readonly type?: string;
  readonly enum?: readonly string[];
  readonly items?: JsonSchemaNode;
}

const jsonSchema = z.toJSONSchema(ManagedConfig, { unrepresentable: 'any' }) as {
  readonly properties: Readonly<Record<string, JsonSchemaNode>>;
};

/** The storage kind of a key, from its zod type. */
export function valueKind(name: ManagedKey): PolicyValueKind {
  const node = jsonSchema.properties[name];
  if (!node) throw new Error(`Unknown managed key ${name}`);
  if (node.type === 'boolean') return { kind: 'boolean' };
  // Stryker disable next-line ConditionalExpression: only string nodes carry `enum` in the JSON schema zod makes
  if (node.type === 'string' && node.enum) return { kind: 'enum', values: node.enum };
  if (node.type === 'string') return { kind: 'string' };
  // Stryker disable next-line ConditionalExpression: only array nodes carry `items` in the JSON schema zod makes
  if (node.type === 'array' && node.items?.type === 'string') {
    return node.items.enum ? { kind: 'string-list', values: node.items.enum } : { kind: 'string-list' };
  }
  return { kind: 'json' };
}
