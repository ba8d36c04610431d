import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { BatchItem } from '../../lib/batch';
import { batchId, type BatchId } from '../../lib/ids';
import { packageFiles } from '../../lib/package-files';
import { progressOf, progressTotals, type BatchProgress } from '../../lib/runtime/batch-progress';
import type { DeadLetter } from '../../lib/runtime/datapath';
import type { RuntimeContext } from '../../lib/runtime/context';
import { readDeadLetters } from '../dead-letters';

/** One batch as the page's timeline and table show it. */
export interface UiBatch {
  readonly batch: number;
  readonly time: number;
  readonly status: BatchItem['status'];
  readonly inputRecords: number;
  readonly outputRecords: number;
  readonly deadLetters: number;
  readonly schedulingDelayMs: number;
  readonly processingMs?: number;
  readonly totalDelayMs?: number;
  readonly inputRate?: number;
  readonly costUsd?: number;
  /** Keys of every stateful stage after the batch. */
  readonly stateKeys?: number;
  /** Event-time pipelines: how far the watermark the batch ran with was behind its time, ms. */
  readonly watermarkLagMs?: number;
  readonly failure?: string;
}

/** A batch drilled into: its progress record and a sample of its dead letters. */
export interface UiBatchDetail {
  readonly batch: UiBatch;
  readonly progress?: BatchProgress;
  readonly deadLetters: readonly DeadLetter[];
}

/** Dead letters shown per batch: a sample, not the whole file. */
const DEAD_LETTER_SAMPLE = 20;

/** Where the page reads batches from: a local run, or a deployed stack. */
export interface UiSource {
  readonly pipelineName: string;
  readonly batchIntervalMs: number;
  batches(): Promise<readonly UiBatch[]>;
  batch(batch: BatchId): Promise<UiBatchDetail | undefined>;
}

function uiBatch(item: BatchItem, progress: BatchProgress | undefined): UiBatch {
  const totals = progress ? progressTotals(progress) : undefined;
  return {
    batch: item.batch,
    time: item.time,
    status: item.status,
    inputRecords: item.inputRecords,
    outputRecords: item.summary?.outputRecords ?? 0,
    deadLetters: item.summary?.deadLetters ?? 0,
    schedulingDelayMs: item.sealedAt - item.time,
    ...(progress && totals
      ? {
          processingMs: progress.processingMs,
          totalDelayMs: progress.totalDelayMs,
          inputRate: progress.inputRate,
          costUsd: progress.costUsd,
          stateKeys: totals.stateKeys,
          ...(totals.watermarkLagMs === undefined ? {} : { watermarkLagMs: totals.watermarkLagMs }),
        }
      : {}),
    ...(item.failure ? { failure: item.failure.message } : {}),
  };
}

/**
 * The batches of a pipeline, from its ledger and its progress records: a local run's, or a
 * deployed stack's (`openStack`).
 *
 * @example
 * const ui = await startUi(contextSource(run.ctx), { port: 4040 });
 */
export function contextSource(ctx: RuntimeContext): UiSource {
  return {
    pipelineName: ctx.pipeline.name,
    batchIntervalMs: ctx.pipeline.batchIntervalMs,
    async batches() {
      return Promise.all(
        (await ctx.ledger.batches.all()).map(async (item) =>
          uiBatch(item, item.status === 'complete' ? await progressOf(ctx, item) : undefined),
        ),
      );
    },
    async batch(batch) {
      const item = await ctx.ledger.batches.get(batch);
      if (!item) return undefined;
      const progress = item.status === 'complete' ? await progressOf(ctx, item) : undefined;
      const deadLetters = (await readDeadLetters(ctx, batch)).slice(0, DEAD_LETTER_SAMPLE);
      return { batch: uiBatch(item, progress), ...(progress ? { progress } : {}), deadLetters };
    },
  };
}

/** A running page server. */
export interface UiServer {
  readonly url: string;
  close(): Promise<void>;
}

/** The page's static files, and the charting library it draws with. */
type StaticFiles = Readonly<Record<string, { readonly file: string; readonly type: string }>>;

function staticFiles(): StaticFiles {
  const ui = path.join(packageFiles().root, 'ui');
  const uplot = path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));
  return {
    '/': { file: path.join(ui, 'index.html'), type: 'text/html; charset=utf-8' },
    '/app.js': { file: path.join(ui, 'app.js'), type: 'text/javascript; charset=utf-8' },
    '/app.css': { file: path.join(ui, 'app.css'), type: 'text/css; charset=utf-8' },
    '/uplot.js': { file: path.join(uplot, 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
    '/uplot.css': { file: path.join(uplot, 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
  };
}

interface Answer {
  readonly status: number;
  readonly type: string;
  readonly body: string | Buffer;
}

const TEXT = 'text/plain; charset=utf-8';

const json = (value: unknown): Answer => ({
  status: 200,
  type: 'application/json',
  body: JSON.stringify(value),
});

async function answer(
  source: UiSource,
  assets: StaticFiles,
  method: string | undefined,
  url: URL,
): Promise<Answer> {
  if (method !== 'GET') return { status: 405, type: TEXT, body: 'only GET' };
  if (url.pathname === '/api/pipeline') {
    return json({ name: source.pipelineName, batchIntervalMs: source.batchIntervalMs });
  }
  if (url.pathname === '/api/batches') return json(await source.batches());
  const detail = /^\/api\/batches\/(\d+)$/.exec(url.pathname);
  if (detail) {
    const found = await source.batch(batchId(Number(detail[1])));
    return found ? json(found) : { status: 404, type: TEXT, body: 'no such batch' };
  }
  const asset = assets[url.pathname];
  if (!asset) return { status: 404, type: TEXT, body: 'not found' };
  return { status: 200, type: asset.type, body: await readFile(asset.file) };
}

function send(response: ServerResponse, { status, type, body }: Answer): void {
  response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  response.end(body);
}

async function route(
  source: UiSource,
  assets: StaticFiles,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  send(
    response,
    await answer(source, assets, request.method, new URL(request.url ?? '/', 'http://localhost')),
  );
}

/**
 * Serves the streaming page of a pipeline: a timeline of its batches like Spark's Streaming tab
 * (input rate, processing time, scheduling and total delay, dead letters and cost per batch) and a
 * batch table that drills down into phases, tasks and sample dead letters. The page polls, so it
 * follows a running pipeline live.
 *
 * @example
 * const ui = await startUi(contextSource(run.ctx), { port: 4040 });
 * console.log(`open ${ui.url}`);
 */
export async function startUi(
  source: UiSource,
  options: { readonly port?: number; readonly host?: string } = {},
): Promise<UiServer> {
  // Found once: the package's files and uPlot's do not move while the page is served.
  const assets = staticFiles();
  const server = createServer((request, response) => {
    route(source, assets, request, response).catch((error: unknown) => {
      if (response.headersSent) {
        response.end();
        return;
      }
      send(response, {
        status: 500,
        type: TEXT,
        body: error instanceof Error ? error.message : String(error),
      });
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 4040, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
