import { createStore, type StoreApi } from 'zustand/vanilla';
import type {
  AppInfo,
  ChatMessage,
  ClearanceApi,
  Conversation,
  ConversationSummary,
  DeviceStatus,
  EntitlementsView,
  IpcError,
  IpcEventPayload,
  SessionState,
} from '../../shared/ipc';
import { MANAGED_NOTICE, type ManagedPolicyView } from '../../shared/managedPolicy';
import type { UpdateStatus } from '../../shared/update';
import { allowedModels, availableAgainText, modelAccess, modelName, regainedModels } from './access';
import { settleStreams, type ChatStream, type PendingSend } from './messages';
import { effectiveSpellCheck, effectiveTheme, isLocked } from './policy';
import { applyTheme, themeOrder, type PreferenceStore, type ThemePreference } from './preferences';

/** A file the page hands to the browser to download (the harness path of export). */
export interface DownloadFile {
  readonly fileName: string;
  readonly content: string;
  readonly mimeType: string;
}

/**
 * What the store needs from the page around it; the entry point passes real ones, tests fakes.
 */
export interface AppStoreDeps {
  readonly api: ClearanceApi;
  readonly preferences: PreferenceStore;
  /** Runs a callback before the next paint (`requestAnimationFrame` in the app). */
  readonly requestFrame: (callback: () => void) => void;
  readonly download: (file: DownloadFile) => void;
  readonly writeClipboard: (text: string) => Promise<void>;
  /** The element whose `data-theme` the theme setting drives; absent in tests that do not care. */
  readonly themeRoot?: HTMLElement;
}

/** A short message in the corner; an `undo` toast can bring a deleted conversation back. */
export interface Toast {
  readonly id: number;
  readonly tone: 'info' | 'error';
  readonly text: string;
  readonly undoConversationId?: string;
}

/** The screen-level views of the signed-in app. */
export type MainView = 'chat' | 'access' | 'settings' | 'policies';

/** Everything the renderer shows, as one immutable snapshot. */
export interface AppState {
  readonly boot: 'loading' | 'ready' | 'failed';
  readonly bootError?: string;
  readonly appInfo?: AppInfo;
  /** IT's managed configuration; `invalid` stops the app at a screen that says why. */
  readonly policy?: ManagedPolicyView;
  /** Spell check in the message box (IT may lock it). */
  readonly spellCheck: boolean;
  readonly session?: SessionState;
  /** The error of the last sign-in call (the session's own `lastError` is shown too). */
  readonly signInError?: string;
  readonly device?: DeviceStatus;
  readonly deviceChecking: boolean;
  readonly deviceError?: string;
  readonly entitlements?: EntitlementsView;
  readonly entitlementsRefreshing: boolean;
  readonly entitlementsError?: string;
  readonly view: MainView;
  readonly theme: ThemePreference;
  readonly conversations: readonly ConversationSummary[];
  readonly conversationsLoaded: boolean;
  readonly searchQuery: string;
  readonly activeConversationId?: string;
  readonly activeConversation?: Conversation;
  readonly conversationError?: string;
  /** Why conversations cannot be saved now (main's words), shown as a read-only banner. */
  readonly saveProblem?: string;
  /** The model chosen for a chat that has no conversation yet. */
  readonly draftModel?: string;
  /** The model chosen to continue an existing conversation with, by conversation id. */
  readonly modelOverrides: Readonly<Record<string, string>>;
  readonly streams: Readonly<Record<string, ChatStream>>;
  readonly pendingSend?: PendingSend;
  readonly sendError?: IpcError;
  readonly toasts: readonly Toast[];
  /** The model whose "Why is this unavailable?" panel is open. */
  readonly whyModelId?: string;
  readonly shortcutsOpen: boolean;
  /** Text for the polite live region; `id` changes so a repeated message is read again. */
  readonly announcement: { readonly id: number; readonly text: string };
  /** Bumped to ask the sidebar's search box to take focus (Ctrl/Cmd+K). */
  readonly searchFocusRequest: number;
  /** Bumped to ask the composer to take focus (new chat, after a send). */
  readonly composerFocusRequest: number;
  /** The in-app updater (IT's updatePolicy) and any minimum version the gateway requires. */
  readonly update?: UpdateStatus;
}

/** What the UI can ask the store to do. */
export interface AppActions {
  /** Subscribes to main's events and loads the first state; returns the unsubscribe. */
  start(): () => void;
  load(): Promise<void>;
  signIn(): Promise<void>;
  cancelSignIn(): Promise<void>;
  signOut(): Promise<void>;
  switchAccount(): Promise<void>;
  recheckDevice(): Promise<void>;
  refreshEntitlements(): Promise<void>;
  showView(view: MainView): void;
  setTheme(theme: ThemePreference): void;
  setSpellCheck(enabled: boolean): void;
  cycleTheme(): void;
  searchConversations(query: string): Promise<void>;
  requestSearchFocus(): void;
  newChat(): void;
  openConversation(id: string): Promise<void>;
  renameConversation(id: string, title: string): Promise<boolean>;
  deleteConversation(id: string): Promise<void>;
  restoreConversation(id: string, toastId?: number): Promise<void>;
  chooseModel(modelId: string): void;
  send(content: string, replaceFromMessageId?: string): Promise<boolean>;
  regenerate(): Promise<boolean>;
  editAndResend(messageId: string, content: string): Promise<boolean>;
  stop(): Promise<void>;
  exportConversation(format: 'markdown' | 'json'): Promise<void>;
  /** Writes the diagnostics bundle for IT (saved by main, or downloaded in the browser harness). */
  exportDiagnostics(): Promise<void>;
  /** Asks main to check the update feed now. */
  checkForUpdates(): Promise<void>;
  /** Downloads the update found, or restarts into the one downloaded. */
  installUpdate(): Promise<void>;
  openExternal(url: string): Promise<void>;
  copy(text: string, what: string): Promise<void>;
  openWhy(modelId: string): void;
  closeWhy(): void;
  setShortcutsOpen(open: boolean): void;
  dismissToast(id: number): void;
  announce(text: string): void;
}

/** The renderer's state and actions in one zustand store. */
export type AppStore = StoreApi<AppState & AppActions>;

const signedOutChat = {
  conversations: [],
  conversationsLoaded: false,
  searchQuery: '',
  activeConversationId: undefined,
  activeConversation: undefined,
  conversationError: undefined,
  saveProblem: undefined,
  draftModel: undefined,
  modelOverrides: {},
  streams: {},
  pendingSend: undefined,
  sendError: undefined,
  whyModelId: undefined,
  view: 'chat',
} satisfies Partial<AppState>;

/**
 * The model a new message in the current chat goes to: the user's choice, else the first allowed.
 */
export function currentModelId(state: AppState): string | undefined {
  const conversation = state.activeConversation;
  if (state.activeConversationId !== undefined) {
    if (!conversation || conversation.id !== state.activeConversationId) return undefined;
    return state.modelOverrides[conversation.id] ?? conversation.model;
  }
  return state.draftModel ?? allowedModels(state.entitlements)[0]?.id;
}

/**
 * Builds the renderer's store around the desktop API.
 *
 * Chat deltas are buffered and applied at most once per frame, so a fast stream costs one
 * render per frame however many tokens arrive.
 */
export function createAppStore(deps: AppStoreDeps): AppStore {
  const { api } = deps;
  let nextToastId = 1;
  let nextAnnouncement = 1;
  let nextPendingId = 1;
  let conversationLoad = 0;
  let listLoad = 0;
  let frameScheduled = false;
  const pendingDeltas = new Map<string, { conversationId: string; text: string }>();

  const initialTheme = deps.preferences.readTheme();
  if (deps.themeRoot) applyTheme(deps.themeRoot, initialTheme);

  return createStore<AppState & AppActions>()((set, get) => {
    const toast = (text: string, tone: Toast['tone'] = 'info', undoConversationId?: string): void => {
      const id = nextToastId++;
      set((state) => ({ toasts: [...state.toasts, { id, tone, text, undoConversationId }] }));
    };
    const announce = (text: string): void => set({ announcement: { id: nextAnnouncement++, text } });

    const flushDeltas = (): void => {
      frameScheduled = false;
      if (pendingDeltas.size === 0) return;
      const batch = [...pendingDeltas.entries()];
      pendingDeltas.clear();
      set((state) => {
        const streams: Record<string, ChatStream> = { ...state.streams };
        for (const [messageId, { conversationId, text }] of batch) {
          const existing = streams[messageId];
          streams[messageId] = existing
            ? { ...existing, text: existing.text + text }
            : { conversationId, messageId, text, status: 'streaming' };
        }
        return { streams };
      });
    };

    const refreshList = async (): Promise<void> => {
      const ticket = ++listLoad;
      const query = get().searchQuery.trim();
      const [result, saving] = await Promise.all([
        api.listConversations(query ? { query } : {}),
        api.getSaveStatus({}),
      ]);
      if (ticket !== listLoad) return;
      if (saving.ok) set({ saveProblem: saving.value.problem });
      if (result.ok) {
        set({ conversations: result.value, conversationsLoaded: true });
      } else {
        set({ conversationsLoaded: true });
        toast(`Conversations could not be loaded: ${result.error.message}`, 'error');
      }
    };

    const loadConversation = async (id: string): Promise<void> => {
      const ticket = ++conversationLoad;
      const result = await api.getConversation({ id });
      if (ticket !== conversationLoad || get().activeConversationId !== id) return;
      if (!result.ok) {
        set({ conversationError: result.error.message });
        return;
      }
      const snapshot = result.value;
      set((state) => ({
        activeConversation: snapshot,
        conversationError: undefined,
        pendingSend: state.pendingSend?.conversationId === id ? undefined : state.pendingSend,
        streams: settleStreams(state.streams, snapshot),
      }));
    };

    const loadSignedIn = async (): Promise<void> => {
      const [device, entitlements] = await Promise.all([api.getDeviceStatus({}), api.getEntitlements({})]);
      set({
        device: device.ok ? device.value : get().device,
        deviceError: device.ok ? undefined : device.error.message,
        entitlements: entitlements.ok ? entitlements.value : get().entitlements,
        entitlementsError: entitlements.ok ? undefined : entitlements.error.message,
      });
      await refreshList();
      const notices = await api.takeNotices({});
      if (notices.ok) for (const notice of notices.value.notices) toast(notice);
    };

    /** Reads the preferences of whoever is signed in now (the device's before sign-in) and applies them. */
    const applyPreferencesOf = (session: SessionState | undefined): void => {
      deps.preferences.usePerson(session?.status === 'signed-in' ? session.account?.homeAccountId : undefined);
      const policy = get().policy;
      const theme = effectiveTheme(policy, deps.preferences.readTheme(), deps.preferences.hasTheme());
      if (deps.themeRoot) applyTheme(deps.themeRoot, theme);
      set({ theme, spellCheck: effectiveSpellCheck(policy, deps.preferences.readSpellCheck()) });
    };

    const onSession = (session: SessionState): void => {
      const previous = get().session;
      const before = previous?.status;
      const samePerson =
        before === 'signed-in' &&
        session.status === 'signed-in' &&
        previous?.account?.homeAccountId === session.account?.homeAccountId;
      if (session.status === 'signed-in' && samePerson) {
        set({ session });
        return;
      }
      // Whoever was signed in before, nothing of theirs stays on screen: one update, so no frame shows it.
      if (before === 'signed-in' || session.status === 'signed-in') {
        conversationLoad++;
        listLoad++;
        pendingDeltas.clear();
        set({ session, ...signedOutChat, entitlements: undefined, toasts: [] });
        applyPreferencesOf(session);
      } else {
        set({ session });
      }
      if (session.status === 'signed-in') void loadSignedIn();
    };

    /** Takes a new view and says once, in words, which models came back (a lifted rule, the gateway reachable again). */
    const onEntitlements = (entitlements: EntitlementsView): void => {
      const regained = get().session?.status === 'signed-in' ? regainedModels(get().entitlements, entitlements) : [];
      set({ entitlements });
      if (regained.length > 0) {
        const text = availableAgainText(regained);
        toast(text);
        announce(text);
      }
    };

    const onDone = (done: IpcEventPayload<'chatDone'>): void => {
      flushDeltas();
      set((state) => {
        const existing = state.streams[done.messageId];
        const stream: ChatStream = {
          ...(existing ?? { conversationId: done.conversationId, messageId: done.messageId, text: '' }),
          status: done.status,
          error: done.error,
        };
        return { streams: { ...state.streams, [done.messageId]: stream } };
      });
      if (done.status === 'complete') announce('Response complete.');
      else if (done.status === 'stopped') announce('Response stopped.');
      else announce(`Response interrupted: ${done.error?.message ?? 'the reply could not be completed.'}`);
      if (get().activeConversationId === done.conversationId) void loadConversation(done.conversationId);
      void refreshList();
    };

    const send = async (content: string, replaceFromMessageId?: string): Promise<boolean> => {
      const state = get();
      const model = currentModelId(state);
      const text = content.trim();
      if (!text || !model || state.pendingSend) return false;
      const access = modelAccess(state.entitlements, model);
      if (access.kind !== 'allowed') {
        set({
          sendError: { code: 'MODEL_DENIED', message: `${modelName(state.entitlements, model)}: ${access.title}.` },
        });
        return false;
      }
      const conversationId = state.activeConversationId;
      const message: ChatMessage = {
        id: `pending-${nextPendingId++}`,
        role: 'user',
        content: text,
        createdAt: new Date().toISOString(),
        model,
      };
      set({ pendingSend: { conversationId, replaceFromMessageId, message }, sendError: undefined });
      const result = await api.sendChat({ conversationId, model, content: text, replaceFromMessageId });
      if (!result.ok) {
        set({ pendingSend: undefined, sendError: result.error });
        announce(`Message not sent: ${result.error.message}`);
        return false;
      }
      const { conversationId: id, messageId } = result.value;
      set((current) => ({
        activeConversationId: current.activeConversationId === conversationId ? id : current.activeConversationId,
        pendingSend: current.pendingSend ? { ...current.pendingSend, conversationId: id } : undefined,
        streams: current.streams[messageId]
          ? current.streams
          : {
              ...current.streams,
              [messageId]: { conversationId: id, messageId, text: '', status: 'streaming', model },
            },
      }));
      if (get().activeConversationId === id) await loadConversation(id);
      else set({ pendingSend: undefined });
      void refreshList();
      return true;
    };

    return {
      boot: 'loading',
      deviceChecking: false,
      entitlementsRefreshing: false,
      theme: initialTheme,
      spellCheck: effectiveSpellCheck(undefined, deps.preferences.readSpellCheck()),
      toasts: [],
      shortcutsOpen: false,
      announcement: { id: 0, text: '' },
      searchFocusRequest: 0,
      composerFocusRequest: 0,
      ...signedOutChat,

      start() {
        const unsubscribe = [
          api.on('sessionChanged', onSession),
          api.on('entitlementsChanged', onEntitlements),
          api.on('deviceChanged', (device) => set({ device })),
          api.on('conversationsChanged', ({ ids }) => {
            if (get().session?.status !== 'signed-in') return;
            void refreshList();
            const active = get().activeConversationId;
            if (active !== undefined && ids.includes(active)) void loadConversation(active);
          }),
          api.on('chatDelta', ({ conversationId, messageId, delta }) => {
            const buffered = pendingDeltas.get(messageId);
            pendingDeltas.set(messageId, { conversationId, text: (buffered?.text ?? '') + delta });
            if (!frameScheduled) {
              frameScheduled = true;
              deps.requestFrame(flushDeltas);
            }
          }),
          api.on('chatDone', onDone),
          api.on('updateChanged', (update) => set({ update })),
        ];
        void get().load();
        return () => unsubscribe.forEach((stop) => stop());
      },

      async load() {
        set({ boot: 'loading', bootError: undefined });
        const policy = await api.getManagedPolicy({});
        if (!policy.ok) {
          set({ boot: 'failed', bootError: `Your organisation’s settings could not be read: ${policy.error.message}` });
          return;
        }
        const theme = effectiveTheme(policy.value, deps.preferences.readTheme(), deps.preferences.hasTheme());
        if (deps.themeRoot) applyTheme(deps.themeRoot, theme);
        set({
          policy: policy.value,
          theme,
          spellCheck: effectiveSpellCheck(policy.value, deps.preferences.readSpellCheck()),
        });
        if (policy.value.state === 'invalid') {
          set({ boot: 'ready' });
          return;
        }
        const [info, session] = await Promise.all([api.getAppInfo({}), api.getSessionState({})]);
        if (!session.ok) {
          set({ boot: 'failed', bootError: session.error.message, appInfo: info.ok ? info.value : undefined });
          return;
        }
        set({ appInfo: info.ok ? info.value : undefined, session: session.value });
        applyPreferencesOf(session.value);
        void api.getUpdateStatus({}).then((update) => update.ok && set({ update: update.value }));
        if (session.value.status === 'signed-in') await loadSignedIn();
        set({ boot: 'ready' });
      },

      async signIn() {
        set({ signInError: undefined });
        const result = await api.signIn({});
        if (result.ok) onSession(result.value);
        else if (result.error.code !== 'SIGN_IN_CANCELLED') {
          set({ signInError: result.error.message });
          announce(`Sign-in failed: ${result.error.message}`);
        }
      },

      async cancelSignIn() {
        const result = await api.cancelSignIn({});
        if (result.ok) onSession(result.value);
        announce('Sign-in cancelled.');
      },

      async signOut() {
        const result = await api.signOut({});
        if (result.ok) onSession(result.value);
        else toast(`Sign-out failed: ${result.error.message}`, 'error');
      },

      async switchAccount() {
        const result = await api.signOut({});
        if (!result.ok) {
          toast(`Sign-out failed: ${result.error.message}`, 'error');
          return;
        }
        onSession(result.value);
        await get().signIn();
      },

      async recheckDevice() {
        set({ deviceChecking: true, deviceError: undefined });
        const result = await api.recheckDevice({});
        set(
          result.ok
            ? { device: result.value, deviceChecking: false }
            : { deviceError: result.error.message, deviceChecking: false },
        );
        announce(
          result.ok
            ? result.value.gate === 'blocked'
              ? 'Device checked: still blocked.'
              : result.value.gate === 'limited'
                ? 'Device checked: some required checks still fail; models that need a compliant device stay unavailable.'
                : 'Device checked: this device meets the requirements.'
            : `Device check failed: ${result.error.message}`,
        );
      },

      async refreshEntitlements() {
        set({ entitlementsRefreshing: true, entitlementsError: undefined });
        const result = await api.refreshEntitlements({});
        if (result.ok) onEntitlements(result.value);
        set(
          result.ok
            ? { entitlementsRefreshing: false }
            : { entitlementsError: result.error.message, entitlementsRefreshing: false },
        );
        announce(result.ok ? 'Access refreshed.' : `Access could not be refreshed: ${result.error.message}`);
      },

      showView(view) {
        set({ view });
      },

      setTheme(theme) {
        if (isLocked(get().policy, 'theme')) {
          announce(`Theme: ${MANAGED_NOTICE}.`);
          return;
        }
        deps.preferences.writeTheme(theme);
        if (deps.themeRoot) applyTheme(deps.themeRoot, theme);
        set({ theme });
      },

      setSpellCheck(enabled) {
        if (isLocked(get().policy, 'spellCheck')) {
          announce(`Spell check: ${MANAGED_NOTICE}.`);
          return;
        }
        deps.preferences.writeSpellCheck(enabled);
        set({ spellCheck: enabled });
      },

      cycleTheme() {
        const index = themeOrder.indexOf(get().theme);
        get().setTheme(themeOrder[(index + 1) % themeOrder.length] ?? 'system');
      },

      async searchConversations(query) {
        set({ searchQuery: query });
        await refreshList();
      },

      requestSearchFocus() {
        set((state) => ({ searchFocusRequest: state.searchFocusRequest + 1, view: 'chat' }));
      },

      newChat() {
        conversationLoad++;
        set((state) => ({
          view: 'chat',
          activeConversationId: undefined,
          activeConversation: undefined,
          conversationError: undefined,
          sendError: undefined,
          pendingSend: state.pendingSend?.conversationId === undefined ? undefined : state.pendingSend,
          composerFocusRequest: state.composerFocusRequest + 1,
        }));
      },

      async openConversation(id) {
        if (get().activeConversationId === id && get().activeConversation?.id === id) {
          set({ view: 'chat' });
          return;
        }
        set({
          view: 'chat',
          activeConversationId: id,
          activeConversation: undefined,
          conversationError: undefined,
          sendError: undefined,
        });
        await loadConversation(id);
      },

      async renameConversation(id, title) {
        const trimmed = title.trim();
        if (!trimmed) return false;
        const result = await api.renameConversation({ id, title: trimmed });
        if (!result.ok) {
          toast(`Rename failed: ${result.error.message}`, 'error');
          return false;
        }
        const summary = result.value;
        set((state) => ({
          conversations: state.conversations.map((c) => (c.id === id ? summary : c)),
          activeConversation:
            state.activeConversation?.id === id
              ? { ...state.activeConversation, title: summary.title }
              : state.activeConversation,
        }));
        return true;
      },

      async deleteConversation(id) {
        const title =
          get().conversations.find((c) => c.id === id)?.title ?? get().activeConversation?.title ?? 'Conversation';
        const result = await api.deleteConversation({ id });
        if (!result.ok || !result.value.deleted) {
          toast(`Delete failed: ${result.ok ? 'the conversation was not found.' : result.error.message}`, 'error');
          return;
        }
        set((state) => ({ conversations: state.conversations.filter((c) => c.id !== id) }));
        if (get().activeConversationId === id) get().newChat();
        toast(`Deleted “${title}”.`, 'info', id);
        announce(`Deleted ${title}. Undo is available.`);
      },

      async restoreConversation(id, toastId) {
        if (toastId !== undefined) get().dismissToast(toastId);
        const result = await api.restoreConversation({ id });
        if (!result.ok || !result.value.restored) {
          toast(`Could not restore: ${result.ok ? 'it is no longer available.' : result.error.message}`, 'error');
          return;
        }
        announce('Conversation restored.');
        await refreshList();
      },

      chooseModel(modelId) {
        const state = get();
        if (modelAccess(state.entitlements, modelId).kind !== 'allowed') return;
        const active = state.activeConversationId;
        if (active === undefined) set({ draftModel: modelId, sendError: undefined });
        else set({ modelOverrides: { ...state.modelOverrides, [active]: modelId }, sendError: undefined });
        set((current) => ({ composerFocusRequest: current.composerFocusRequest + 1 }));
        announce(`Model: ${modelName(state.entitlements, modelId)}.`);
      },

      send: (content, replaceFromMessageId) => send(content, replaceFromMessageId),

      async regenerate() {
        const messages = get().activeConversation?.messages ?? [];
        const lastAssistant = messages.findLastIndex((message) => message.role === 'assistant');
        const prompt = messages.slice(0, lastAssistant).findLast((message) => message.role === 'user');
        if (lastAssistant < 0 || !prompt) return false;
        return send(prompt.content, prompt.id);
      },

      async editAndResend(messageId, content) {
        return send(content, messageId);
      },

      async stop() {
        const { activeConversationId: id, streams, activeConversation } = get();
        if (id === undefined) return;
        const live =
          Object.values(streams).some((stream) => stream.conversationId === id && stream.status === 'streaming') ||
          (activeConversation?.id === id && activeConversation.messages.some((m) => m.status === 'streaming'));
        if (!live) return;
        const result = await api.stopChat({ conversationId: id });
        if (!result.ok) toast(`Could not stop: ${result.error.message}`, 'error');
      },

      async exportConversation(format) {
        const id = get().activeConversationId;
        if (id === undefined) return;
        const result = await api.exportConversation({ id, format });
        if (!result.ok) {
          toast(`Export failed: ${result.error.message}`, 'error');
          return;
        }
        const { fileName, content, savedTo } = result.value;
        if (savedTo) {
          toast(`Exported to ${savedTo}.`);
          return;
        }
        deps.download({
          fileName,
          content,
          mimeType: format === 'json' ? 'application/json' : 'text/markdown',
        });
        announce(`Downloaded ${fileName}.`);
      },

      async exportDiagnostics() {
        const result = await api.exportDiagnostics({});
        if (!result.ok) {
          toast(`Could not export diagnostics: ${result.error.message}`, 'error');
          return;
        }
        const { fileName, content, savedTo } = result.value;
        if (savedTo) {
          toast(`Diagnostics saved to ${savedTo}. Send this file to IT.`);
          return;
        }
        deps.download({ fileName, content, mimeType: 'application/json' });
        announce(`Downloaded ${fileName}. Send this file to IT.`);
      },

      async checkForUpdates() {
        const result = await api.checkForUpdates({});
        if (!result.ok) toast(`Could not check for updates: ${result.error.message}`, 'error');
        else set({ update: result.value });
      },

      async installUpdate() {
        const result = await api.installUpdate({});
        if (!result.ok) toast(`Could not update: ${result.error.message}`, 'error');
        else set({ update: result.value });
      },

      async openExternal(url) {
        const result = await api.openExternal({ url });
        if (!result.ok) toast(`Could not open the link: ${result.error.message}`, 'error');
        else if (!result.value.opened)
          toast('That link is not on your organisation’s list of allowed sites, so it was not opened.', 'error');
      },

      async copy(text, what) {
        try {
          await deps.writeClipboard(text);
          announce(`${what} copied.`);
        } catch {
          toast(`${what} could not be copied.`, 'error');
        }
      },

      openWhy(modelId) {
        set({ whyModelId: modelId });
      },

      closeWhy() {
        set({ whyModelId: undefined });
      },

      setShortcutsOpen(open) {
        set({ shortcutsOpen: open });
      },

      dismissToast(id) {
        set((state) => ({ toasts: state.toasts.filter((t) => t.id !== id) }));
      },

      announce,
    };
  });
}
