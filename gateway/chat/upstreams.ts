import type { CatalogModel } from '../catalog';
import { AnthropicUpstream } from './anthropic-upstream';
import { DemoUpstream } from './demo-upstream';
import { OpenAiUpstream } from './openai-upstream';
import { modelParameters } from './parameters';
import { UpstreamError, type Upstream, type UpstreamTransport } from './upstream';

/** What upstream construction needs from the gateway's configuration. */
export interface UpstreamSettings {
  readonly demoTokensPerSecond: number;
  readonly transport: UpstreamTransport;
  /** Where `apiKeyEnv` names are looked up (normally `process.env`). */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * Picks the upstream for a catalog model.
 *
 * API keys are read from the environment on each call, so a key can be rotated without a
 * restart; a missing key is a clear 502 rather than an unauthenticated call.
 */
export function upstreamFor(model: CatalogModel, settings: UpstreamSettings): Upstream {
  const config = model.upstream;
  switch (config.kind) {
    case 'demo':
      return new DemoUpstream(settings.demoTokensPerSecond);
    case 'openai': {
      const apiKey = config.apiKeyEnv ? settings.env[config.apiKeyEnv] : undefined;
      if (config.apiKeyEnv && !apiKey) throw missingKey(model, config.apiKeyEnv);
      return new OpenAiUpstream(
        {
          baseUrl: config.baseUrl,
          model: config.model,
          ...(apiKey ? { apiKey } : {}),
          requestUsage: modelParameters('openai', model.parameters).includes('stream_options'),
        },
        settings.transport,
      );
    }
    case 'anthropic': {
      const apiKey = settings.env[config.apiKeyEnv];
      if (!apiKey) throw missingKey(model, config.apiKeyEnv);
      return new AnthropicUpstream(
        { baseUrl: config.baseUrl, model: config.model, apiKey, maxTokens: config.maxTokens },
        settings.transport,
      );
    }
  }
}

function missingKey(model: CatalogModel, variable: string): UpstreamError {
  return new UpstreamError(502, `${model.name} is not configured: environment variable ${variable} holds no API key`);
}
