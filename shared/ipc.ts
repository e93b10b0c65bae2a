import { z } from 'zod';
import { DecisionReason, ENROLMENT_REASONS } from './reasons';
import { ModelEntitlement } from './entitlements';
import { DeviceAssurance, PostureCheck } from './device';
import { ManagedPolicyView } from './managedPolicy';
import { UpdateStatus } from './update';

/** Codes of errors an IPC call can answer with instead of a value. */
export const IpcErrorCode = z.enum([
  'BAD_REQUEST',
  'UNKNOWN_CHANNEL',
  'FORBIDDEN_SENDER',
  'NOT_SIGNED_IN',
  'SIGN_IN_FAILED',
  'SIGN_IN_CANCELLED',
  'DEVICE_BLOCKED',
  'MODEL_DENIED',
  'GATEWAY_UNAVAILABLE',
  'NOT_FOUND',
  /** The app could not save (a full disk, a folder it cannot write); what was shown is kept in memory. */
  'SAVE_FAILED',
  'INTERNAL',
]);
export type IpcErrorCode = z.infer<typeof IpcErrorCode>;

/**
 * An error as the renderer receives it: a code it can switch on and a sentence a person can act on.
 */
export const IpcError = z.object({
  code: IpcErrorCode,
  message: z.string(),
  reason: DecisionReason.optional(),
  /** The id of the rule that refused or cut the call, when a policy did (shown next to the reason). */
  policy: z.string().max(200).optional(),
  issues: z.array(z.string()).optional(),
  /** Technical detail (addresses, error codes) for a "Details" disclosure and the log, never the message itself. */
  detail: z.string().max(2000).optional(),
});
export type IpcError = z.infer<typeof IpcError>;

/** Every IPC answer: a value, or an error as a value (never a thrown exception across the bridge). */
export type IpcResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: IpcError };

const Empty = z.object({}).strict();
const Id = z.string().min(1).max(200);

/** Facts about the running app. */
export const AppInfo = z.object({
  name: z.string(),
  version: z.string(),
  platform: z.string(),
  shell: z.enum(['electron', 'harness']),
  gatewayUrl: z.string(),
});
export type AppInfo = z.infer<typeof AppInfo>;

/** The signed-in account as the UI may show it (never a token). */
export const Account = z.object({
  name: z.string(),
  username: z.string(),
  tenantId: z.string().optional(),
  homeAccountId: z.string(),
});
export type Account = z.infer<typeof Account>;

/** Where the sign-in flow stands. */
export const SessionState = z.object({
  status: z.enum(['signed-out', 'signing-in', 'signed-in']),
  account: Account.optional(),
  /** `session-only` when the OS secret store cannot protect the token cache. */
  tokenPersistence: z.enum(['encrypted', 'session-only']),
  /** A plain-words message from the last failed attempt, shown on the sign-in screen. */
  lastError: z.string().optional(),
});
export type SessionState = z.infer<typeof SessionState>;

/** How the client is hearing about entitlement changes. */
export const LiveUpdateState = z.enum(['connected', 'polling', 'offline']);
export type LiveUpdateState = z.infer<typeof LiveUpdateState>;

/**
 * The entitlements as the renderer shows them: already verified and with staleness applied.
 */
export const EntitlementsView = z.object({
  status: z.enum(['none', 'current', 'stale']),
  models: z.array(ModelEntitlement),
  ver: z.number().int().optional(),
  expiresAt: z.string().optional(),
  lastRefresh: z.string().optional(),
  live: LiveUpdateState,
  supportContact: z.string().optional(),
  /** A plain-words note when the last refresh failed or its document was refused (the last good one is kept). */
  lastError: z.string().optional(),
});
export type EntitlementsView = z.infer<typeof EntitlementsView>;

/** The device as the renderer may see it: a thumbprint, never the key. */
export const DeviceStatus = z.object({
  thumbprint: z.string().optional(),
  assurance: DeviceAssurance.optional(),
  checks: z.array(PostureCheck),
  requiredChecks: z.array(z.string()),
  gate: z.enum(['unknown', 'pass', 'limited', 'blocked']),
  checkedAt: z.string().optional(),
  /** Why the device cannot be attested at all (e.g. no OS secret store for its key), in words a person can act on. */
  problem: z.string().optional(),
  /** The gateway's enrolment policy refused this device a session (waiting for approval, no certificate…). */
  enrolment: z.object({ reason: z.enum(ENROLMENT_REASONS), message: z.string() }).optional(),
});
export type DeviceStatus = z.infer<typeof DeviceStatus>;

/** Token counts of one reply as the gateway reported them (OpenAI's `usage`). */
export const TokenUsage = z.object({
  promptTokens: z.number().int().nonnegative(),
  completionTokens: z.number().int().nonnegative(),
  totalTokens: z.number().int().nonnegative(),
});
export type TokenUsage = z.infer<typeof TokenUsage>;

/** One message of a conversation. */
export const ChatMessage = z.object({
  id: Id,
  role: z.enum(['user', 'assistant']),
  content: z.string(),
  createdAt: z.string(),
  model: z.string().optional(),
  /** The gateway's audit record for the call this message was sent or received under. */
  decisionId: z.string().optional(),
  status: z.enum(['complete', 'streaming', 'stopped', 'error']).optional(),
  error: IpcError.optional(),
  /** Tokens the reply took, shown quietly next to its time. */
  usage: TokenUsage.optional(),
});
export type ChatMessage = z.infer<typeof ChatMessage>;

/** A whole conversation. */
export const Conversation = z.object({
  id: Id,
  title: z.string(),
  model: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  messages: z.array(ChatMessage),
});
export type Conversation = z.infer<typeof Conversation>;

/** A conversation as listed in the sidebar. */
export const ConversationSummary = z.object({
  id: Id,
  title: z.string(),
  model: z.string(),
  updatedAt: z.string(),
  messageCount: z.number().int(),
  snippet: z.string().optional(),
});
export type ConversationSummary = z.infer<typeof ConversationSummary>;

/**
 * The IPC contract: every call, its request and its response.
 *
 * The preload, the IPC handlers, the harness bridge and the renderer's accessor are all
 * derived from this one map, so adding a call is one edit here.
 */
export const ipcCalls = {
  getAppInfo: { request: Empty, response: AppInfo },
  /** IT's managed configuration: what applied, what was rejected, and whether the app may run. */
  getManagedPolicy: { request: Empty, response: ManagedPolicyView },
  getSessionState: { request: Empty, response: SessionState },
  signIn: { request: Empty, response: SessionState },
  cancelSignIn: { request: Empty, response: SessionState },
  signOut: { request: Empty, response: SessionState },
  getEntitlements: { request: Empty, response: EntitlementsView },
  refreshEntitlements: { request: Empty, response: EntitlementsView },
  getDeviceStatus: { request: Empty, response: DeviceStatus },
  recheckDevice: { request: Empty, response: DeviceStatus },
  sendChat: {
    request: z
      .object({
        conversationId: Id.optional(),
        model: Id,
        content: z.string().min(1).max(200_000),
        /** Replace the conversation from this message on (edit and resend, regenerate). */
        replaceFromMessageId: Id.optional(),
      })
      .strict(),
    response: z.object({ conversationId: Id, messageId: Id }),
  },
  stopChat: { request: z.object({ conversationId: Id }).strict(), response: z.object({ stopped: z.boolean() }) },
  listConversations: {
    request: z.object({ query: z.string().max(500).optional() }).strict(),
    response: z.array(ConversationSummary),
  },
  getConversation: { request: z.object({ id: Id }).strict(), response: Conversation },
  renameConversation: {
    request: z.object({ id: Id, title: z.string().min(1).max(200) }).strict(),
    response: ConversationSummary,
  },
  deleteConversation: { request: z.object({ id: Id }).strict(), response: z.object({ deleted: z.boolean() }) },
  restoreConversation: { request: z.object({ id: Id }).strict(), response: z.object({ restored: z.boolean() }) },
  exportConversation: {
    request: z.object({ id: Id, format: z.enum(['markdown', 'json']) }).strict(),
    response: z.object({ fileName: z.string(), content: z.string(), savedTo: z.string().optional() }),
  },
  openExternal: {
    request: z.object({ url: z.string().max(2048) }).strict(),
    response: z.object({ opened: z.boolean() }),
  },
  /** Whether the signed-in person's conversations can be saved now, and if not why (shown as a banner). */
  getSaveStatus: {
    request: Empty,
    response: z.object({ writable: z.boolean(), problem: z.string().optional() }),
  },
  /** Messages owed to the person signed in (e.g. that older data was set aside), each answered only once. */
  takeNotices: { request: Empty, response: z.object({ notices: z.array(z.string()) }) },
  /** A page error for the main process log (bounded; the page's own errors, never message text). */
  reportRendererError: {
    request: z
      .object({
        message: z.string().max(2000),
        stack: z.string().max(8000).optional(),
        source: z.enum(['error', 'unhandledrejection', 'render']),
      })
      .strict(),
    response: z.object({ logged: z.boolean() }),
  },
  /** Writes the diagnostics bundle IT asks for: one JSON file, no tokens, keys, cookies or message text. */
  exportDiagnostics: {
    request: Empty,
    response: z.object({ fileName: z.string(), content: z.string(), savedTo: z.string().optional() }),
  },
  /** The in-app updater's state (IT's updatePolicy, the feed, a version the gateway requires). */
  getUpdateStatus: { request: Empty, response: UpdateStatus },
  /** Checks the update feed now (refused when IT turned updates off). */
  checkForUpdates: { request: Empty, response: UpdateStatus },
  /** Downloads the update found, or restarts into the one downloaded. */
  installUpdate: { request: Empty, response: UpdateStatus },
} as const;

/** Names of the IPC calls. */
export type IpcChannel = keyof typeof ipcCalls;
/** The request a call takes, as the caller writes it. */
export type IpcRequest<C extends IpcChannel> = z.input<(typeof ipcCalls)[C]['request']>;
/** The value a call answers with. */
export type IpcResponse<C extends IpcChannel> = z.output<(typeof ipcCalls)[C]['response']>;

/** Events main pushes to the renderer; the preload forwards only these. */
export const ipcEvents = {
  sessionChanged: SessionState,
  entitlementsChanged: EntitlementsView,
  deviceChanged: DeviceStatus,
  conversationsChanged: z.object({ ids: z.array(Id) }),
  chatDelta: z.object({ conversationId: Id, messageId: Id, delta: z.string() }),
  chatDone: z.object({
    conversationId: Id,
    messageId: Id,
    status: z.enum(['complete', 'stopped', 'error']),
    error: IpcError.optional(),
  }),
  updateChanged: UpdateStatus,
} as const;

/** Names of the events. */
export type IpcEventName = keyof typeof ipcEvents;
/** An event's payload. */
export type IpcEventPayload<E extends IpcEventName> = z.output<(typeof ipcEvents)[E]>;

/** The prefix of every IPC channel on the Electron side. */
export const IPC_PREFIX = 'clearance:';

/**
 * What the page sees as `window.clearance`: one named function per call and an `on` for events.
 */
export type ClearanceApi = {
  readonly [C in IpcChannel]: (request: IpcRequest<C>) => Promise<IpcResult<IpcResponse<C>>>;
} & {
  readonly on: <E extends IpcEventName>(event: E, listener: (payload: IpcEventPayload<E>) => void) => () => void;
};

/**
 * A transport to main: the preload wraps `ipcRenderer`, the harness wraps a WebSocket.
 */
export interface IpcTransport {
  invoke(channel: IpcChannel, request: unknown): Promise<unknown>;
  subscribe(event: IpcEventName, listener: (payload: unknown) => void): () => void;
}

/**
 * Builds the `window.clearance` object from a transport, one named function per call.
 *
 * The preload and the harness bridge both use this, so the page cannot tell them apart.
 */
export function buildClearanceApi(transport: IpcTransport): ClearanceApi {
  const api: Record<string, unknown> = {};
  for (const channel of Object.keys(ipcCalls) as IpcChannel[]) {
    api[channel] = (request: unknown) => transport.invoke(channel, request ?? {});
  }
  api.on = (event: IpcEventName, listener: (payload: unknown) => void) => {
    if (!(event in ipcEvents)) throw new Error(`Unknown event "${String(event)}"`);
    return transport.subscribe(event, listener);
  };
  return Object.freeze(api) as ClearanceApi;
}
