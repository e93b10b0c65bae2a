import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { downloadFile, writeClipboard } from './browser';
import { clearance, PlatformUnavailableError } from './platform';
import { StartupFailedScreen } from './screens/StatusScreens';
import { storagePreferences } from './state/preferences';
import { createAppStore } from './state/store';
import './styles/tokens.css';
import './styles/base.css';
import './styles/app.css';
import './styles/chat.css';
import './styles/markdown.css';
import './styles/settings.css';

/**
 * The renderer's composition root: reads the desktop API once, builds the store, renders.
 */
function start(rootElement: HTMLElement): void {
  const root = createRoot(rootElement);
  let api;
  try {
    api = clearance();
  } catch (error) {
    const message = error instanceof PlatformUnavailableError ? error.message : String(error);
    root.render(<StartupFailedScreen message={message} />);
    return;
  }
  // The page's own errors reach main's log through the contract's validated call (no other channel).
  const report = (source: 'error' | 'unhandledrejection', reason: unknown) => {
    const error = reason instanceof Error ? reason : undefined;
    void api
      .reportRendererError({
        source,
        message: (error?.message ?? String(reason)).slice(0, 2000),
        ...(error?.stack ? { stack: error.stack.slice(0, 8000) } : {}),
      })
      .catch(() => {});
  };
  window.addEventListener('error', (event) => report('error', event.error ?? event.message));
  window.addEventListener('unhandledrejection', (event) => report('unhandledrejection', event.reason));
  const store = createAppStore({
    api,
    preferences: storagePreferences(window.localStorage),
    requestFrame: (callback) => window.requestAnimationFrame(() => callback()),
    download: downloadFile,
    writeClipboard,
    themeRoot: document.documentElement,
  });
  root.render(
    <StrictMode>
      <App store={store} />
    </StrictMode>,
  );
}

const rootElement = document.getElementById('root');
if (!rootElement) throw new Error('The page has no #root element.');
start(rootElement);
