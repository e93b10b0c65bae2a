import { existsSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Subscription } from '../signal';

/** Timing of `watchSource`. */
export interface WatchOptions {
  /** Quiet time after a change before `onChange` runs. */
  readonly debounceMs: number;
  /** Interval of the safety-net reconcile (0 turns it off); `onChange` compares content hashes. */
  readonly reconcileMs: number;
}

/**
 * Calls `onChange` when the file or folder at `path` may have changed, in a way that survives
 * how operators really publish.
 *
 * A watch on the path itself follows an inode, so it goes deaf after a write-then-rename of
 * a file, a folder deleted and recreated, or a symlinked folder flipped in one rename (how
 * Kubernetes mounts a ConfigMap). So the parent folder is watched too, the path's own watch
 * is re-armed after every burst, and a periodic reconcile calls `onChange` regardless: the
 * caller compares content hashes, so a reconcile that finds nothing new costs one read.
 */
export function watchSource(
  path: string,
  options: WatchOptions,
  onChange: (trigger: 'watch' | 'reconcile') => void,
  log: (line: string) => void = () => {},
): Subscription {
  const name = basename(path);
  let timer: NodeJS.Timeout | undefined;
  let own: FSWatcher | undefined;
  let parent: FSWatcher | undefined;
  let disposed = false;
  // Stryker disable next-line StringLiteral: no warning is ever empty, so any start value lets the first one through
  let lastWarning = '';

  const warn = (line: string) => {
    if (line !== lastWarning) log(line);
    lastWarning = line;
  };
  const schedule = () => {
    if (disposed) return;
    // Stryker disable next-line ConditionalExpression: clearTimeout(undefined) does nothing
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      arm();
      onChange('watch');
    }, options.debounceMs);
  };
  const open = (target: string, filter?: (file: string | null) => boolean): FSWatcher | undefined => {
    try {
      const watcher = watch(target, { persistent: false }, (_event, file) => {
        if (!filter || filter(file)) schedule();
      });
      watcher.on('error', (error) => {
        warn(`watching ${target} failed: ${error.message}; re-arming`);
        watcher.close();
        schedule();
      });
      return watcher;
    } catch (error) {
      warn(`cannot watch ${target} yet: ${(error as Error).message}; the reconcile keeps checking`);
      return undefined;
    }
  };
  const arm = () => {
    // Stryker disable next-line ConditionalExpression: unreachable after dispose, which clears the debounce timer and the reconcile, arm's only later callers
    if (disposed) return;
    own?.close();
    own = undefined;
    // A folder is watched for its entries; a file is covered by the parent watch alone,
    // which sees a rename over it.
    if (existsSync(path) && isDirectory(path)) own = open(path);
    if (!parent) {
      const directory = dirname(path);
      // In the parent, only the entry itself matters, except in a ConfigMap-style mount
      // where files are symlinks through `..data`, flipped by renaming that entry.
      parent = open(directory, (file) => file === null || file === name || file.startsWith('..'));
      parent?.on('close', () => {
        parent = undefined;
      });
    }
  };

  arm();
  const reconcile =
    options.reconcileMs > 0
      ? setInterval(() => {
          arm();
          onChange('reconcile');
        }, options.reconcileMs)
      : undefined;
  reconcile?.unref();

  return {
    dispose: () => {
      disposed = true;
      // Stryker disable next-line ConditionalExpression: clearTimeout(undefined) does nothing
      if (timer) clearTimeout(timer);
      // Stryker disable next-line ConditionalExpression: clearInterval(undefined) does nothing
      if (reconcile) clearInterval(reconcile);
      own?.close();
      parent?.close();
    },
  };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
