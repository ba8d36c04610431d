import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type dynaliteFactory from 'dynalite';
import type kinesaliteFactory from 'kinesalite';
import type S3rver from '@20minutes/s3rver';
import { MissingPackageError } from '../lib/errors';
import { missingPeers } from '../lib/package-files';
import { makeObjectWritesAtomic } from './s3rver-atomic';
import { installDesCompatibleBucketController } from './s3rver-cipher';

/**
 * Options of {@link startEmulator}.
 *
 * @example
 * const options: EmulatorOptions = { port: 4566, dataDir: '.sluice/emulator' };
 */
export interface EmulatorOptions {
  /** TCP port for the single endpoint; 0 picks a free one. @default 0 */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** Directory for persistent data (LevelDB for dynalite/kinesalite, files for s3rver). Unset: a fresh temporary directory removed on stop. */
  readonly dataDir?: string;
}

/**
 * A running emulator: DynamoDB, Kinesis and S3 behind one endpoint.
 *
 * @example
 * const emulator: Emulator = await startEmulator();
 * process.env.AWS_ENDPOINT_URL = emulator.endpoint;
 * await emulator.stop();
 */
export interface Emulator {
  /** e.g. 'http://127.0.0.1:45123' : one endpoint that serves DynamoDB, Kinesis and S3 like LocalStack does. */
  readonly endpoint: string;
  readonly port: number;
  stop(): Promise<void>;
}

type Service = 'dynamodb' | 'kinesis' | 's3';

/** One in-process emulator listening on its own loopback port. */
interface Backend {
  readonly port: number;
  close(): Promise<void>;
}

interface EmulatorModules {
  readonly dynalite: typeof dynaliteFactory;
  readonly kinesalite: typeof kinesaliteFactory;
  readonly S3rver: typeof S3rver;
}

const LOOPBACK = '127.0.0.1';

/** The only access key s3rver knows; any other is rejected as InvalidAccessKeyId. */
const S3RVER_ACCESS_KEY = 'S3RVER';

/** Headers that describe one connection, not the message, so they must not cross the proxy. */
const HOP_BY_HOP_HEADERS: readonly string[] = Object.freeze([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
  // The front server has already answered 100-continue; the backend must not wait for it again.
  'expect',
]);

/**
 * Starts dynalite (DynamoDB), kinesalite (Kinesis) and s3rver (S3) in this process and serves
 * them on one endpoint, routed like LocalStack: `X-Amz-Target: DynamoDB_*` and `Kinesis_*` go to
 * their emulators, everything else is S3. S3 accepts any access key, like LocalStack does.
 *
 * @example
 * const emulator = await startEmulator();
 * const clients = createAwsClients({
 *   endpoint: emulator.endpoint,
 *   region: 'us-east-1',
 *   credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
 * });
 * // ... use the clients ...
 * destroyAwsClients(clients);
 * await emulator.stop();
 */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const host = options.host ?? LOOPBACK;
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'sluice-emulator-')));
  const removeOwnedDataDir = async (): Promise<void> => {
    if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
  };

  let backends: Readonly<Record<Service, Backend>>;
  try {
    backends = await startBackends(loadEmulatorModules(), ownsDataDir ? undefined : dataDir, dataDir);
  } catch (error) {
    await removeOwnedDataDir();
    throw error;
  }
  const closeBackends = async (): Promise<void> => {
    const results = await Promise.allSettled(Object.values(backends).map((backend) => backend.close()));
    const failure = results.find((result) => result.status === 'rejected');
    if (failure) throw failure.reason;
  };

  // Keep-alive spares a loopback connection per proxied call: thousands of short-lived ones would
  // pile up in TIME_WAIT under benchmarks.
  const agent = new http.Agent({ keepAlive: true });
  const front = http.createServer((req, res) => forward(req, res, backends, agent));
  let port: number;
  try {
    port = await listen(front, options.port ?? 0, host);
  } catch (error) {
    agent.destroy();
    await closeBackends().catch(() => undefined);
    await removeOwnedDataDir();
    throw error;
  }

  let stopping: Promise<void> | undefined;
  const shutdown = async (): Promise<void> => {
    try {
      await closeServer(front);
    } finally {
      agent.destroy();
      try {
        await closeBackends();
      } finally {
        await removeOwnedDataDir();
      }
    }
  };
  return {
    endpoint: `http://${endpointHost(host)}:${port}`,
    port,
    stop: () => (stopping ??= shutdown()),
  };
}

/**
 * Loads the emulators lazily, with s3rver's bucket controller compiled against a patched crypto
 * first so that s3rver picks it up from the require cache.
 */
function loadEmulatorModules(): EmulatorModules {
  const requireHere = createRequire(__filename);
  // They are optional peers of sluice: a project that only deploys need not install them.
  const missing = missingPeers(EMULATOR_PACKAGES);
  if (Object.keys(missing).length > 0) throw new MissingPackageError('Local runs and testPipeline', missing);
  installDesCompatibleBucketController(requireHere);
  return {
    dynalite: requireHere('dynalite') as typeof dynaliteFactory,
    kinesalite: requireHere('kinesalite') as typeof kinesaliteFactory,
    S3rver: requireHere('@20minutes/s3rver') as typeof S3rver,
  };
}

/** The emulator's servers, from npm. */
const EMULATOR_PACKAGES = ['dynalite', 'kinesalite', '@20minutes/s3rver'] as const;

async function startBackends(
  modules: EmulatorModules,
  persistentDir: string | undefined,
  dataDir: string,
): Promise<Readonly<Record<Service, Backend>>> {
  // Without a data directory of the caller's, DynamoDB and Kinesis stay in memory (faster, and
  // nothing to clean up); s3rver always needs a directory.
  const dynamoPath = persistentDir === undefined ? undefined : path.join(persistentDir, 'dynamodb');
  const kinesisPath = persistentDir === undefined ? undefined : path.join(persistentDir, 'kinesis');
  const s3Path = path.join(dataDir, 's3');
  await Promise.all(
    [dynamoPath, kinesisPath, s3Path]
      .filter((dir) => dir !== undefined)
      .map((dir) => mkdir(dir, { recursive: true })),
  );

  const [dynamodb, kinesis, s3] = await Promise.allSettled([
    startHttpBackend(
      modules.dynalite({
        createTableMs: 0,
        deleteTableMs: 0,
        updateTableMs: 0,
        ...(dynamoPath === undefined ? {} : { path: dynamoPath }),
      }),
    ),
    startHttpBackend(
      modules.kinesalite({
        createStreamMs: 0,
        deleteStreamMs: 0,
        updateStreamMs: 0,
        // kinesalite's default of 10 open shards would fail tests that create many streams.
        shardLimit: 10_000,
        ...(kinesisPath === undefined ? {} : { path: kinesisPath }),
      }),
    ),
    startS3rver(modules.S3rver, s3Path),
  ]);
  if (dynamodb.status === 'fulfilled' && kinesis.status === 'fulfilled' && s3.status === 'fulfilled') {
    return { dynamodb: dynamodb.value, kinesis: kinesis.value, s3: s3.value };
  }
  const results = [dynamodb, kinesis, s3];
  await Promise.allSettled(
    results.flatMap((result) => (result.status === 'fulfilled' ? [result.value.close()] : [])),
  );
  const failure = results.find((result) => result.status === 'rejected');
  throw failure?.reason;
}

async function startHttpBackend(server: http.Server): Promise<Backend> {
  const port = await listen(server, 0, LOOPBACK);
  return { port, close: () => closeServer(server) };
}

async function startS3rver(S3rverClass: typeof S3rver, directory: string): Promise<Backend> {
  const s3rver = new S3rverClass({
    port: 0,
    address: LOOPBACK,
    silent: true,
    directory,
    // Resetting runs a synchronous, deprecated rmdirSync that warns on stderr; stop() removes a
    // temporary directory itself, and a caller's directory is meant to persist.
    resetOnClose: false,
    configureBuckets: [],
    // Clients sign with their own secret; s3rver only checks signatures made with S3RVER's.
    allowMismatchedSignatures: true,
  });
  makeObjectWritesAtomic((s3rver as unknown as { readonly store: unknown }).store);
  const address = await s3rver.run();
  if (address === null || typeof address === 'string') {
    await s3rver.close();
    throw new Error(`s3rver is not listening on a TCP port (${String(address)})`);
  }
  return {
    port: address.port,
    close: async () => {
      const closed = s3rver.close();
      s3rver.httpServer?.closeAllConnections();
      await closed;
    },
  };
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const address = server.address();
      if (address === null || typeof address === 'string') {
        reject(new Error(`server is not listening on a TCP port (${String(address)})`));
      } else {
        resolve(address.port);
      }
    });
  });
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    // Idle keep-alive sockets of clients (SDKs pool them) would otherwise hold close() open.
    server.closeAllConnections();
  });
}

function endpointHost(host: string): string {
  if (host === '0.0.0.0') return LOOPBACK;
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

function serviceOf(req: http.IncomingMessage): Service {
  const target = req.headers['x-amz-target'];
  if (typeof target === 'string') {
    if (target.startsWith('DynamoDB_')) return 'dynamodb';
    if (target.startsWith('Kinesis_')) return 'kinesis';
  }
  return 's3';
}

function withoutHopByHop<T extends http.IncomingHttpHeaders>(headers: T): T {
  return Object.fromEntries(
    Object.entries(headers).filter(([name]) => !HOP_BY_HOP_HEADERS.includes(name)),
  ) as T;
}

/**
 * Swaps the client's access key id for s3rver's in the Authorization header (SigV4 and SigV2) and
 * in presigned URLs. The signature then no longer matches, which allowMismatchedSignatures accepts.
 */
function withS3rverAccessKey(
  headers: http.IncomingHttpHeaders,
  url: string,
): { readonly headers: http.IncomingHttpHeaders; readonly url: string } {
  const authorization = headers.authorization
    ?.replace(/(Credential=)[^/,\s]*\//, `$1${S3RVER_ACCESS_KEY}/`)
    .replace(/^AWS [^:\s]*:/, `AWS ${S3RVER_ACCESS_KEY}:`);
  return {
    headers: authorization === undefined ? headers : { ...headers, authorization },
    url: url
      .replace(/([?&]X-Amz-Credential=)[^&]*?(%2F|\/)/i, `$1${S3RVER_ACCESS_KEY}$2`)
      .replace(/([?&]AWSAccessKeyId=)[^&]*/, `$1${S3RVER_ACCESS_KEY}`),
  };
}

/** Streams one request to its backend and the answer back, without buffering either body. */
function forward(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  backends: Readonly<Record<Service, Backend>>,
  agent: http.Agent,
): void {
  const service = serviceOf(req);
  const headers = withoutHopByHop(req.headers);
  const target =
    service === 's3' ? withS3rverAccessKey(headers, req.url ?? '/') : { headers, url: req.url ?? '/' };

  const upstream = http.request({
    host: LOOPBACK,
    port: backends[service].port,
    method: req.method ?? 'GET',
    path: target.url,
    headers: target.headers,
    agent,
  });
  upstream.on('response', (upstreamRes) => {
    res.writeHead(
      upstreamRes.statusCode ?? 502,
      upstreamRes.statusMessage,
      withoutHopByHop(upstreamRes.headers),
    );
    // A backend dying mid-body must cut the client off, not leave it waiting for the rest.
    upstreamRes.on('error', () => res.destroy());
    upstreamRes.pipe(res);
  });
  upstream.on('error', (error) => {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const body = `sluice emulator: ${service} backend failed: ${error.message}\n`;
    res.writeHead(502, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  });
  // A client that goes away (abort, timeout) frees the backend's work and socket too.
  req.on('error', () => upstream.destroy());
  res.on('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
}
