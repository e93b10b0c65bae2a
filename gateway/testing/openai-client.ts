import OpenAI from 'openai';
import type { GatewayTestClient } from './device-client';

/**
 * A `fetch` for the official OpenAI SDK that authenticates like the desktop client.
 *
 * It replaces the SDK's `Authorization: Bearer <apiKey>` with the session's
 * `Authorization: DPoP <token>` and a fresh DPoP proof for the exact method and URL.
 */
export function dpopFetch(client: GatewayTestClient): typeof fetch {
  return async (input, init = {}) => {
    const request = new Request(input, init);
    const token = client.accessToken;
    if (!token) throw new Error('sign in first');
    const headers = new Headers(init.headers ?? request.headers);
    headers.set('authorization', `DPoP ${token}`);
    headers.set('dpop', await client.device.proof(request.method, request.url, { accessToken: token }));
    return fetch(request.url, { ...init, method: request.method, headers });
  };
}

/** The official OpenAI SDK pointed at the gateway, signed in as `client`, without retries. */
export function openAiFor(client: GatewayTestClient): OpenAI {
  return new OpenAI({
    baseURL: `${client.gatewayUrl}/v1`,
    apiKey: 'unused: the DPoP-bound session token is sent instead',
    fetch: dpopFetch(client),
    maxRetries: 0,
  });
}
