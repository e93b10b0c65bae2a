import { createContext, useContext, type ReactNode } from 'react';
import { useStore } from 'zustand';
import type { AppActions, AppState, AppStore } from './store';

const StoreContext = createContext<AppStore | null>(null);

/** Makes one app store available to every component below it. */
export function StoreProvider({ store, children }: { readonly store: AppStore; readonly children: ReactNode }) {
  return <StoreContext.Provider value={store}>{children}</StoreContext.Provider>;
}

/** The app store itself, for components that call actions or read state outside render. */
export function useAppStore(): AppStore {
  const store = useContext(StoreContext);
  if (!store) throw new Error('useAppStore must be used inside <StoreProvider>.');
  return store;
}

/**
 * A slice of the app state; the component re-renders only when the selected value changes.
 *
 * Selectors must return stored values (not freshly built arrays or objects): derive in `useMemo`.
 */
export function useAppState<T>(selector: (state: AppState & AppActions) => T): T {
  return useStore(useAppStore(), selector);
}

/** The store's actions (stable functions; selecting them never causes a re-render). */
export function useActions(): AppActions {
  return useAppStore().getState();
}
