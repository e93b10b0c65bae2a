import { createHash } from 'node:crypto';
import { writeFile, mkdir } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  CancellationToken,
  configureRequestOptions,
  configureRequestUrl,
  HttpExecutor,
  type DownloadOptions,
} from 'builder-util-runtime';
import { NsisUpdater } from 'electron-updater';
import type { AppAdapter } from 'electron-updater/out/AppAdapter';

/** A generic update feed on loopback: a folder of files served as electron-builder's `generic` provider expects. */
export interface UpdateFeed {
  readonly url: string;
  /** Paths asked for, in order. */
  readonly requests: string[];
  /** Replaces or adds a file the feed serves. */
  put(name: string, content: string | Buffer): void;
  close(): Promise<void>;
}

/** Starts a feed serving `files` over loopback http. */
export async function startUpdateFeed(files: Record<string, string | Buffer> = {}): Promise<UpdateFeed> {
  const served = new Map(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)]));
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/feed\//, '');
    requests.push(path);
    const body = served.get(path);
    if (!body) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/feed/`,
    requests,
    put: (name, content) => void served.set(name, Buffer.from(content)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The sha512 (base64) electron-builder writes into a channel file. */
export function sha512(content: Buffer | string): string {
  return createHash('sha512').update(content).digest('base64');
}

/** A channel file (`latest.yml`) for one installer, as electron-builder writes it. */
export function channelFile(version: string, file: string, content: Buffer | string, claimedSha512?: string): string {
  const hash = claimedSha512 ?? sha512(content);
  const size = Buffer.byteLength(content);
  return [
    `version: ${version}`,
    'files:',
    `  - url: ${file}`,
    `    sha512: ${hash}`,
    `    size: ${size}`,
    `path: ${file}`,
    `sha512: ${hash}`,
    `releaseDate: '2026-11-28T00:00:00.000Z'`,
    '',
  ].join('\n');
}

/**
 * electron-updater's HTTP client over Node's http/https (Electron's uses `net`, which plain Node lacks).
 */
export class NodeHttpExecutor extends HttpExecutor<ReturnType<typeof httpRequest>> {
  createRequest(options: RequestOptions, callback: (response: IncomingMessage) => void) {
    return (options.protocol === 'https:' ? httpsRequest : httpRequest)(options, callback);
  }

  download(url: URL, destination: string, options: DownloadOptions): Promise<string> {
    return (options.cancellationToken ?? new CancellationToken()).createPromise<string>((resolve, reject, onCancel) => {
      const requestOptions: RequestOptions = { headers: (options.headers ?? undefined) as RequestOptions['headers'] };
      configureRequestUrl(url, requestOptions);
      configureRequestOptions(requestOptions);
      this.doDownload(
        requestOptions,
        {
          destination,
          options,
          onCancel,
          callback: (error) => (error ? reject(error) : resolve(destination)),
          responseHandler: null,
        },
        0,
      );
    });
  }
}

/** The installed app as the updater sees it, in a temporary folder; quit handlers are kept, never run. */
export class TestAppAdapter implements AppAdapter {
  readonly name = 'Clearance';
  readonly quitHandlers: ((exitCode: number) => void)[] = [];
  quitCalls = 0;

  constructor(
    readonly version: string,
    private readonly dir: string,
    readonly isPackaged = true,
  ) {}

  get appUpdateConfigPath(): string {
    return join(this.dir, 'resources', 'app-update.yml');
  }
  get userDataPath(): string {
    return join(this.dir, 'userData');
  }
  get baseCachePath(): string {
    return join(this.dir, 'cache');
  }
  whenReady(): Promise<void> {
    return Promise.resolve();
  }
  relaunch(): void {}
  quit(): void {
    this.quitCalls++;
  }
  onQuit(handler: (exitCode: number) => void): void {
    this.quitHandlers.push(handler);
  }
}

/** A Windows (NSIS) updater of the real electron-updater, run in plain Node against a local feed. */
export interface TestUpdater {
  readonly updater: NsisUpdater;
  readonly app: TestAppAdapter;
  /** The updater's download cache (pending installers live under it). */
  readonly cacheDir: string;
}

/**
 * Builds electron-updater's real NsisUpdater for an installed `version` in `dir`, with the packaged
 * `app-update.yml` naming `publisherNames`, and `verifySignature` standing in for Windows' Authenticode
 * check (PowerShell's Get-AuthenticodeSignature), which cannot run here.
 */
export async function createTestUpdater(
  dir: string,
  version: string,
  options: {
    readonly publisherNames?: readonly string[];
    readonly verifySignature?: (publisherNames: string[], file: string) => Promise<string | null>;
    /** False stands for an installation electron-updater cannot update (it then checks nothing). */
    readonly packaged?: boolean;
  } = {},
): Promise<TestUpdater> {
  const app = new TestAppAdapter(version, dir, options.packaged ?? true);
  await mkdir(join(dir, 'resources'), { recursive: true });
  const publisher = options.publisherNames?.length
    ? `publisherName:\n${options.publisherNames.map((n) => `  - ${n}`).join('\n')}\n`
    : '';
  await writeFile(
    app.appUpdateConfigPath,
    `provider: generic\nurl: https://updates.lab.example/clearance\nupdaterCacheDirName: clearance-updater\n${publisher}`,
  );
  const updater = new NsisUpdater(null, app);
  const internals = updater as unknown as {
    httpExecutor: HttpExecutor<never>;
    _testOnlyOptions: { platform: NodeJS.Platform; isUseDifferentialDownload: boolean };
  };
  internals.httpExecutor = new NodeHttpExecutor() as unknown as HttpExecutor<never>;
  // The feed is read as Windows would (latest.yml, the .exe), with full downloads only.
  internals._testOnlyOptions = { platform: 'win32', isUseDifferentialDownload: false };
  updater.logger = null;
  if (options.verifySignature) updater.verifyUpdateCodeSignature = options.verifySignature;
  return { updater, app, cacheDir: join(app.baseCachePath, 'clearance-updater') };
}
