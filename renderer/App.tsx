import { useEffect, useRef, useState } from 'react';
import { LiveRegion, Toasts } from './components/Toasts';
import { HighlighterProvider, type HighlighterLoader } from './markdown/highlighter';
import { DeviceGateScreen } from './screens/DeviceGateScreen';
import { ManagedPolicyErrorScreen } from './screens/ManagedPolicyErrorScreen';
import { MainLayout } from './screens/MainLayout';
import { SignInScreen } from './screens/SignInScreen';
import { UpdateRequiredScreen } from './screens/UpdateNotices';
import { LoadingScreen, StartupFailedScreen } from './screens/StatusScreens';
import { StoreProvider, useActions, useAppState } from './state/context';
import type { AppStore } from './state/store';

/** Which screen the state calls for. */
export type ScreenName = 'loading' | 'failed' | 'update-required' | 'sign-in' | 'device-gate' | 'main';

function Screen() {
  const boot = useAppState((state) => state.boot);
  const bootError = useAppState((state) => state.bootError);
  const status = useAppState((state) => state.session?.status);
  const gate = useAppState((state) => state.device?.gate);
  const policyInvalid = useAppState((state) => state.policy?.state === 'invalid');
  const updateRequired = useAppState((state) => state.update?.requiredVersion !== undefined);
  const { load, exportDiagnostics } = useActions();
  const [reviewingDevice, setReviewingDevice] = useState(false);
  // Back from the device checks, focus returns to the banner's button that opened them.
  const returnFocus = useRef(false);
  useEffect(() => {
    if (!returnFocus.current) return;
    returnFocus.current = false;
    document.querySelector<HTMLElement>('[data-testid="device-limited-banner"] button')?.focus();
  });
  if (policyInvalid) return <ManagedPolicyErrorScreen />;
  if (boot === 'failed')
    return (
      <StartupFailedScreen
        message={bootError ?? 'Unknown error.'}
        onRetry={() => void load()}
        onExportDiagnostics={() => void exportDiagnostics()}
      />
    );
  if (boot === 'loading' && status === undefined) return <LoadingScreen />;
  if (updateRequired) return <UpdateRequiredScreen />;
  if (status !== 'signed-in') return <SignInScreen />;
  if (gate === 'blocked') return <DeviceGateScreen />;
  // The policy limits only the models that need a compliant device: the app opens with a banner,
  // and its device checks are a page with a way back.
  if (gate === 'limited' && reviewingDevice)
    return (
      <DeviceGateScreen
        onBack={() => {
          setReviewingDevice(false);
          returnFocus.current = true;
        }}
      />
    );
  return <MainLayout onReviewDevice={gate === 'limited' ? () => setReviewingDevice(true) : undefined} />;
}

/**
 * The whole renderer: starts the store (events and first load) and shows the screen the state
 * calls for — loading, sign-in, device gate, or the main app.
 */
export function App({
  store,
  loadHighlighter,
}: {
  readonly store: AppStore;
  readonly loadHighlighter?: HighlighterLoader;
}) {
  useEffect(() => store.getState().start(), [store]);
  return (
    <StoreProvider store={store}>
      <HighlighterProvider load={loadHighlighter}>
        <Screen />
        <Toasts />
        <LiveRegion />
      </HighlighterProvider>
    </StoreProvider>
  );
}
