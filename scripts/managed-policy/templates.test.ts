import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import plist from 'plist';
import { afterEach, describe, expect, it } from 'vitest';
import { MANAGED_KEYS, ManagedConfig, POLICY_STORES } from '../../main/config/schema';
import { staleFiles } from './generate';
import {
  renderAdml,
  renderAdmx,
  renderLinuxExample,
  renderManifest,
  renderMobileconfig,
  TEMPLATE_DIR,
} from './templates';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

type Node = Record<string, unknown>;
const asArray = <T>(value: T | readonly T[] | undefined): readonly T[] =>
  value === undefined ? [] : Array.isArray(value) ? (value as readonly T[]) : [value as T];
const parseXml = (text: string): Node =>
  new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', isArray: () => false }).parse(text) as Node;

/** The ADMX rules that can be checked offline (the ones Group Policy and Intune's import enforce). */
function admxProblems(admxText: string, admlText: string): string[] {
  const problems: string[] = [];
  const admx = parseXml(admxText).policyDefinitions as Node;
  const adml = parseXml(admlText).policyDefinitionResources as Node;
  if (admx['@xmlns'] !== 'http://schemas.microsoft.com/GroupPolicy/2006/07/PolicyDefinitions')
    problems.push('admx namespace');
  if (adml['@xmlns'] !== admx['@xmlns']) problems.push('adml namespace');
  if (admx['@revision'] !== adml['@revision']) problems.push('revisions differ');
  const resources = adml.resources as Node;
  const strings = new Set(asArray((resources.stringTable as Node).string as Node[]).map((s) => s['@id'] as string));
  const presentations = new Map(
    asArray((resources.presentationTable as Node).presentation as Node[]).map((p) => [p['@id'] as string, p]),
  );
  const categories = asArray((admx.categories as Node).category as Node[]);
  const categoryNames = new Set(categories.map((c) => c['@name'] as string));
  const supported = new Set(
    asArray(((admx.supportedOn as Node).definitions as Node).definition as Node[]).map((d) => d['@name'] as string),
  );
  const stringRef = (ref: unknown, where: string) => {
    const id = /^\$\(string\.([^)]+)\)$/.exec(String(ref))?.[1];
    if (!id || !strings.has(id)) problems.push(`${where}: missing string ${String(ref)}`);
  };
  for (const c of categories) {
    stringRef(c['@displayName'], `category ${String(c['@name'])}`);
    const parent = (c.parentCategory as Node | undefined)?.['@ref'];
    if (parent !== undefined && !categoryNames.has(parent as string))
      problems.push(`category parent ${String(parent)}`);
  }
  const names = new Set<string>();
  for (const policy of asArray((admx.policies as Node).policy as Node[])) {
    const name = policy['@name'] as string;
    if (names.has(name)) problems.push(`duplicate policy ${name}`);
    names.add(name);
    if (!['Machine', 'User', 'Both'].includes(policy['@class'] as string)) problems.push(`${name}: class`);
    if (String(policy['@key']).toUpperCase().startsWith('HKEY_') || String(policy['@key']).startsWith('HK'))
      problems.push(`${name}: key must be relative to the hive`);
    stringRef(policy['@displayName'], name);
    stringRef(policy['@explainText'], name);
    if (!categoryNames.has((policy.parentCategory as Node)['@ref'] as string)) problems.push(`${name}: category`);
    if (!supported.has((policy.supportedOn as Node)['@ref'] as string)) problems.push(`${name}: supportedOn`);
    const elements = (policy.elements as Node | undefined) ?? {};
    const ids = Object.entries(elements).flatMap(([kind, element]) =>
      asArray<Node>(element as Node).map((e) => ({ kind, node: e, id: e['@id'] as string })),
    );
    if (ids.length === 0 && policy['@valueName'] === undefined) problems.push(`${name}: no value written`);
    for (const { kind, node } of ids) {
      if (kind === 'enum') for (const item of asArray(node.item as Node[])) stringRef(item['@displayName'], name);
      if (kind !== 'list' && node['@valueName'] === undefined) problems.push(`${name}: ${kind} without valueName`);
    }
    const presentationRef = policy['@presentation'];
    if (ids.length > 0) {
      const id = /^\$\(presentation\.([^)]+)\)$/.exec(String(presentationRef))?.[1];
      const presentation = id ? presentations.get(id) : undefined;
      if (!presentation) {
        problems.push(`${name}: missing presentation`);
        continue;
      }
      const refIds = Object.entries(presentation)
        .filter(([k]) => !k.startsWith('@'))
        .flatMap(([, v]) => asArray(v as Node).map((e) => (e as Node)['@refId'] as string));
      for (const { id: elementId } of ids) {
        if (!refIds.includes(elementId)) problems.push(`${name}: element ${elementId} has no control`);
      }
      for (const refId of refIds) if (!ids.some((e) => e.id === refId)) problems.push(`${name}: control ${refId}`);
    }
  }
  return problems;
}

describe('managed-policy templates', () => {
  const temps: string[] = [];
  afterEach(async () => {
    await Promise.all(temps.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('are fresh: the files in build/managed-policy and the docs table match the schema', async () => {
    expect(await staleFiles(root)).toEqual([]);
  });

  it('reports a generated file that was edited by hand or deleted as stale', async () => {
    const copy = await mkdtemp(join(tmpdir(), 'clearance-templates-'));
    temps.push(copy);
    await cp(join(root, TEMPLATE_DIR), join(copy, TEMPLATE_DIR), { recursive: true });
    await cp(join(root, 'docs'), join(copy, 'docs'), { recursive: true });
    await cp(join(root, '.prettierrc.json'), join(copy, '.prettierrc.json'));
    await writeFile(join(copy, TEMPLATE_DIR, 'linux', 'policy.json'), '{}\n');
    await rm(join(copy, TEMPLATE_DIR, 'windows', 'Clearance.admx'));
    expect(await staleFiles(copy)).toEqual([
      { path: `${TEMPLATE_DIR}/windows/Clearance.admx`, reason: 'missing' },
      { path: `${TEMPLATE_DIR}/linux/policy.json`, reason: 'different' },
    ]);
  });

  it('produce well-formed ADMX and ADML that follow the administrative template rules', () => {
    const admx = renderAdmx();
    const adml = renderAdml();
    expect(XMLValidator.validate(admx)).toBe(true);
    expect(XMLValidator.validate(adml)).toBe(true);
    expect(admxProblems(admx, adml)).toEqual([]);
    const policies = asArray(((parseXml(admx).policyDefinitions as Node).policies as Node).policy as Node[]);
    expect(policies.map((p) => p['@name'])).toEqual([...MANAGED_KEYS]);
  });

  it('finds a broken template: the rule check can fail', () => {
    const admx = renderAdmx();
    const adml = renderAdml();
    expect(admxProblems(admx, adml.replace('<string id="gatewayUrl">', '<string id="gatewayURL">'))).toContain(
      'gatewayUrl: missing string $(string.gatewayUrl)',
    );
    expect(admxProblems(admx.replace('class="Both"', 'class="Everyone"'), adml).join()).toMatch(/class/);
    expect(XMLValidator.validate(admx.replace('</policies>', ''))).not.toBe(true);
  });

  it('produce a configuration profile whose payload is valid managed settings', () => {
    const profile = plist.parse(renderMobileconfig()) as Record<string, unknown>;
    expect(profile.PayloadType).toBe('Configuration');
    const [payload] = profile.PayloadContent as Array<Record<string, unknown>>;
    expect(payload?.PayloadType).toBe(POLICY_STORES.darwinDomain);
    const settings = Object.fromEntries(Object.entries(payload ?? {}).filter(([k]) => !k.startsWith('Payload')));
    expect(Object.keys(settings)).toEqual([...MANAGED_KEYS]);
    expect(ManagedConfig.safeParse(settings).success).toBe(true);
  });

  it('produce a property-list manifest naming every key with its type', () => {
    const manifest = plist.parse(renderManifest()) as {
      pfm_domain: string;
      pfm_subkeys: Array<Record<string, unknown>>;
    };
    expect(manifest.pfm_domain).toBe(POLICY_STORES.darwinDomain);
    expect(manifest.pfm_subkeys.map((k) => k.pfm_name)).toEqual([...MANAGED_KEYS]);
    expect(manifest.pfm_subkeys.find((k) => k.pfm_name === 'updatePolicy')).toMatchObject({
      pfm_type: 'string',
      pfm_range_list: ['off', 'notify', 'auto'],
    });
  });

  it('produce a Linux example the schema accepts', () => {
    expect(ManagedConfig.safeParse(JSON.parse(renderLinuxExample())).success).toBe(true);
  });
});
