import { watch, type FSWatcher } from 'node:fs';
import type { Subscription } from '../signal';

/**
 * Calls `onChange` once a burst of file-system changes under `path` has settled.
 *
 * Editors save through temporary files and renames, so one save is several events; the
 * debounce collapses them into one reload.
 */
export function watchDebounced(
  path: string,
  debounceMs: number,
  onChange: () => void,
  log: (line: string) => void = () => {},
): Subscription {
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(path, { persistent: false }, () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = undefined;
        onChange();
      }, debounceMs);
    });
    watcher.on('error', (error) => log(`watching ${path} failed: ${error.message}`));
  } catch (error) {
    log(`cannot watch ${path}: ${(error as Error).message}; changes need a restart`);
  }
  return {
    dispose: () => {
      if (timer) clearTimeout(timer);
      watcher?.close();
    },
  };
}
