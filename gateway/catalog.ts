import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { OPENAI_CHAT_PARAMETERS, UPSTREAM_PARAMETERS } from './chat/parameters';

/** Where the demo catalog lives when no catalog is given. */
export const DEFAULT_CATALOG_PATH = fileURLToPath(new URL('./catalog.json', import.meta.url));

const ModelId = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'lowercase letters, digits, ".", "_" or "-"');

/**
 * Where a model's completions come from.
 *
 * `apiKeyEnv` names an environment variable; keys never live in the catalog itself.
 */
export const UpstreamConfig = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('demo') }).strict(),
  z
    .object({
      kind: z.literal('openai'),
      baseUrl: z.url({ protocol: /^https?$/ }),
      model: z.string().min(1),
      apiKeyEnv: z.string().min(1).optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('anthropic'),
      baseUrl: z.url({ protocol: /^https?$/ }).default('https://api.anthropic.com'),
      model: z.string().min(1),
      apiKeyEnv: z.string().min(1).default('ANTHROPIC_API_KEY'),
      maxTokens: z.number().int().positive().default(4096),
    })
    .strict(),
]);
export type UpstreamConfig = z.infer<typeof UpstreamConfig>;

/** The restriction attributes Cedar sees on a `Clearance::Model` entity. */
export const ModelAttributes = z
  .object({
    exportControlled: z.boolean(),
    suspended: z.boolean(),
    requiredGroups: z.array(z.string().min(1)),
    requiresHardware: z.boolean(),
    requiresCompliantDevice: z.boolean(),
  })
  .strict();
export type ModelAttributes = z.infer<typeof ModelAttributes>;

/**
 * One model in the catalog.
 *
 * `since` is the date the model's restriction took effect, shown when the determining policy
 * carries no `@since` of its own. `hidden-when-denied` leaves the model out of pickers for
 * users who may not use it (status `hidden`, no reason text). `parameters` lists the OpenAI
 * request parameters the model honours (besides model, messages, stream); without it, all its
 * upstream kind can honour. A request with any other parameter is refused with a 400 naming it.
 */
export const CatalogModel = z
  .object({
    id: ModelId,
    name: z.string().min(1),
    description: z.string().optional(),
    demo: z.boolean().default(false),
    since: z.iso.datetime().optional(),
    visibility: z.enum(['visible', 'hidden-when-denied']).default('visible'),
    upstream: UpstreamConfig,
    parameters: z.array(z.enum(OPENAI_CHAT_PARAMETERS)).optional(),
    attributes: ModelAttributes,
  })
  .strict();
export type CatalogModel = z.infer<typeof CatalogModel>;

/** The catalog file's shape. */
export const CatalogFile = z
  .object({
    models: z.array(CatalogModel).min(1),
  })
  .strict()
  .superRefine((catalog, context) => {
    const seen = new Set<string>();
    for (const [index, model] of catalog.models.entries()) {
      if (seen.has(model.id)) {
        context.addIssue({
          code: 'custom',
          message: `duplicate model id "${model.id}"`,
          path: ['models', index, 'id'],
        });
      }
      seen.add(model.id);
      for (const [position, name] of (model.parameters ?? []).entries()) {
        if (!UPSTREAM_PARAMETERS[model.upstream.kind].includes(name)) {
          context.addIssue({
            code: 'custom',
            message: `a ${model.upstream.kind} upstream cannot honour "${name}"`,
            path: ['models', index, 'parameters', position],
          });
        }
      }
    }
  });
export type CatalogFile = z.input<typeof CatalogFile>;

/**
 * The models the gateway offers, with a revision that changes whenever their content does.
 */
export class Catalog {
  readonly models: readonly CatalogModel[];
  /** Short content hash; part of every decision cache key. */
  readonly revision: string;
  private readonly byId: ReadonlyMap<string, CatalogModel>;

  private constructor(models: readonly CatalogModel[]) {
    this.models = models;
    this.byId = new Map(models.map((model) => [model.id, model]));
    this.revision = createHash('sha256').update(JSON.stringify(models)).digest('hex').slice(0, 16);
  }

  /** Validates a parsed catalog; throws an error naming the offending field. */
  static fromJson(value: unknown, source = 'catalog'): Catalog {
    const parsed = CatalogFile.safeParse(value);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
      throw new Error(`Invalid ${source}: ${issues.join('; ')}`);
    }
    return new Catalog(parsed.data.models);
  }

  /** Reads and validates a catalog file. */
  static fromFile(path: string): Catalog {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw new Error(`Cannot read catalog ${path}: ${(error as Error).message}`, { cause: error });
    }
    return Catalog.fromText(text, `catalog ${path}`);
  }

  /** Parses and validates catalog JSON text; an empty or truncated text is refused. */
  static fromText(text: string, source = 'catalog'): Catalog {
    if (text.trim() === '') throw new Error(`${source} is empty`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new Error(`${source} is not valid JSON: ${(error as Error).message}`, { cause: error });
    }
    return Catalog.fromJson(json, source);
  }

  /** The model with this id, if the catalog has it. */
  get(id: string): CatalogModel | undefined {
    return this.byId.get(id);
  }
}
