import type { BatchItem, BatchStatus } from '../lib/batch';
import { withSettings, type AnyPipeline, type Pipeline, type PipelineSettings } from '../lib/dsl/pipeline';
import { NotReadyError, PlanMismatchError } from '../lib/errors';
import { batchId, partitionId, type BatchId } from '../lib/ids';
import { parseManifest, type Manifest } from '../lib/manifest';
import { checkSealedPlan, outputPrefix, planPipeline, type PlanSpec } from '../lib/plan';
import type { RuntimeContext } from '../lib/runtime/context';
import { fromJsonLines } from '../lib/runtime/output';
import {
  keepsState,
  replayOutputPrefix,
  ReplayError,
  segmentsOf,
  startSealedBatch,
} from '../lib/runtime/replay';
import { manifestKey, outputKey, skippedBatchKey } from '../lib/storage/keys';
import type { ObjectStore } from '../lib/storage/objects';
import { batchRange, sealedBatchTimes, type BatchOrTime } from './batch-range';
import { startEmulator } from './emulator';
import type { FaultOptions } from './faults';
import { LocalRuntime } from './runtime';
import { openTarget, type TargetFlags } from './target';

export { ReplayError } from '../lib/runtime/replay';

/** Segments copied into the shadow bucket at once. */
const COPIES_AT_ONCE = 8;

/**
 * What `replay` does, and where: the pipeline it reads (a named run or a deployed stack), the
 * batches, the output prefix, and how the shadow run goes.
 *
 * @example
 * const options: ReplayOptions = { stack: 'sluice-wordcount', from: 40, to: 60, outputPrefix: 'replays/fix-1' };
 */
export interface ReplayOptions extends TargetFlags {
  /** The endpoint of a named run (or of a stack in an emulator). @default process.env.AWS_ENDPOINT_URL */
  readonly endpoint?: string;
  /** The first batch published: a batch number, or the first batch whose interval ends then or later. */
  readonly from: number | BatchOrTime;
  /** The last batch published: a number, or the last ending then or earlier. @default the last sealed batch */
  readonly to?: number | BatchOrTime;
  /** Where in the pipeline's bucket the replayed batches' output and dead letters go. */
  readonly outputPrefix: string;
  /**
   * The batch interval the pipeline was run with, when it is not its own (a named run started with
   * `--batch-interval`): a stateful plan's windows count in batches, so the replay's must match the
   * sealed one. Partitions need none: a sealed batch runs with the partitions it was sealed with.
   */
  readonly settings?: Pick<PipelineSettings, 'batchInterval'>;
  /** Faults injected into the shadow run (tests of the replay itself). @default none */
  readonly faults?: FaultOptions;
  /** Task invocations of the shadow run at once. @default 8 */
  readonly concurrency?: number;
  /** Called as each batch ends in the shadow run, warm-up batches included. */
  readonly onBatch?: (batch: ReplayedBatch) => void;
  /**
   * Stops the replay before its next batch (what is written stays written): a `ReplayError`, once
   * the shadow is cleaned up.
   */
  readonly signal?: AbortSignal;
}

/**
 * One batch as the replay ran it.
 *
 * @example
 * const line: ReplayedBatch = { kind: 'sluice.replayed-batch@1', batch, time, warmUp: false, status: 'complete', inputRecords: 40, outputRecords: 12, deadLetters: 0, written: ['replays/r1/batch-0000000003/part-00000.jsonl'] };
 */
export interface ReplayedBatch {
  readonly kind: 'sluice.replayed-batch@1';
  readonly batch: BatchId;
  /** The batch time, epoch ms (its manifest's). */
  readonly time: number;
  /** Run before `from` only to rebuild the state of a stateful pipeline: nothing of it is published. */
  readonly warmUp: boolean;
  /** `complete`, `skipped` (the pipeline skipped it too, and it failed again) or `failed`. */
  readonly status: BatchStatus;
  readonly inputRecords: number;
  readonly outputRecords: number;
  readonly deadLetters: number;
  /** The objects written under the output prefix, in the pipeline's bucket. */
  readonly written: readonly string[];
  /** Why it failed. */
  readonly failure?: string;
}

/**
 * What a replay did: the batches published, their totals, where they went, and the failed batch
 * it stopped at, if it did.
 *
 * @example
 * const report: ReplayReport = await replay(wordcount, { stack: 'sluice-wordcount', from: 1, outputPrefix: 'replays/r1' });
 * if (report.failed) console.error(report.failed.message);
 */
export interface ReplayReport {
  readonly kind: 'sluice.replay@1';
  readonly pipeline: string;
  /** The pipeline read: `run 'nightly' on http://...` or `stack 'sluice-wordcount'`. */
  readonly source: string;
  readonly bucket: string;
  readonly outputPrefix: string;
  readonly from: number;
  readonly to: number;
  /** Batches run before `from` to rebuild state, unpublished. */
  readonly warmUp: number;
  /** Batches of `from`..`to` that ended complete or skipped, and were published. */
  readonly batches: number;
  readonly inputRecords: number;
  readonly outputRecords: number;
  readonly deadLetters: number;
  /** Objects written under the output prefix. */
  readonly objects: number;
  /** The batch the replay stopped at, and why. */
  readonly failed?: { readonly batch: BatchId; readonly message: string };
}

/**
 * Re-runs sealed batches of a pipeline with the code given (the deployed version or a new one)
 * and writes their output and dead letters under another prefix of the pipeline's bucket. The
 * bucket is read (each batch's sealed manifest and the segments it names) and of the ledger only
 * which batch was sealed last, never the stream, so a replay reaches back as far as the bucket
 * keeps segments. The batches run in order on an embedded emulator in this process, the shadow:
 * its ledger and state are its own, so the pipeline's ledger, state and output are never touched
 * and nothing is created in the account. A pipeline that keeps state runs from batch 1 (the
 * batches before `from` rebuild the state and are not published); one without starts at `from`.
 * Unchanged code writes the pipeline's own output again, byte for byte. A batch that fails stops
 * the replay (one the pipeline skipped too is skipped again): the report says which and why.
 *
 * @example
 * import { replay } from 'sluice/testing';
 * const report = await replay(wordcount, { stack: 'sluice-wordcount', from: 40, to: 60, outputPrefix: 'replays/fix-1' });
 * console.log(`${report.batches} batches, ${report.outputRecords} records under ${report.outputPrefix}/`);
 */
export async function replay<T, Out>(
  pipeline: Pipeline<T, Out>,
  options: ReplayOptions,
): Promise<ReplayReport> {
  const shadowPipeline = shadowOf(pipeline, options.settings);
  // The record types matter to the stages' code, not to the plan.
  const plan = planPipeline(shadowPipeline as AnyPipeline).spec;
  const prefix = replayOutputPrefix(options.outputPrefix, [plan]);
  const from = bound(options.from);
  const to = options.to === undefined ? undefined : bound(options.to);
  if (to && 'batch' in from && 'batch' in to && to.batch < from.batch) {
    throw new ReplayError(
      `the last batch to replay, ${to.batch}, is before the first, ${from.batch}`,
      'Give --to at or after --from.',
    );
  }
  const target = await openTarget(
    pipeline,
    {
      ...(options.run === undefined ? {} : { run: options.run }),
      ...(options.stack === undefined ? {} : { stack: options.stack }),
    },
    'sluice replay',
    options.endpoint === undefined ? {} : { endpoint: options.endpoint },
  );
  try {
    const source = target.ctx;
    const range = await resolveRange(source, from, to);
    const first = await readSealedManifest(source, pipeline.name, range.from);
    replayOutputPrefix(prefix, [first.manifest.plan, plan]);
    checkPlan(first.manifest, plan);
    const start = keepsState(first.manifest.plan) || keepsState(plan) ? 1 : range.from;
    const emulator = await startEmulator();
    try {
      const shadow = await LocalRuntime.start(shadowPipeline, {
        endpoint: emulator.endpoint,
        clock: 'manual',
        startAfter: start - 1,
        ...(options.faults ? { faults: options.faults } : {}),
        ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
      });
      try {
        const ran = await runBatches({
          source,
          shadow,
          pipeline: pipeline.name,
          plan,
          prefix,
          start,
          range,
          ...(options.onBatch ? { onBatch: options.onBatch } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
        });
        return report(ran, {
          pipeline: pipeline.name,
          source: target.where,
          bucket: source.config.bucket,
          outputPrefix: prefix,
          from: range.from,
          to: range.to,
          warmUp: range.from - start,
        });
      } finally {
        await shadow.stop();
      }
    } finally {
      await emulator.stop();
    }
  } finally {
    await target.close();
  }
}

/**
 * The pipeline as the shadow runs it: with the run's settings; a failed batch halts it, whatever
 * the pipeline says (the replay stops there and says why), and no `foreachBatch` sink runs (they
 * write outside the bucket, and a replay writes only under its prefix).
 */
function shadowOf<T, Out>(pipeline: Pipeline<T, Out>, settings: ReplayOptions['settings']): Pipeline<T, Out> {
  const configured = settings ? withSettings(pipeline, settings) : pipeline;
  return Object.freeze({
    ...configured,
    onBatchFailure: 'halt' as const,
    sinks: configured.sinks.filter((sink) => sink.spec.kind !== 'sluice.sink/foreachBatch@1'),
  });
}

function bound(value: number | BatchOrTime): BatchOrTime {
  return typeof value === 'number' ? { batch: value } : value;
}

function describeBound(value: BatchOrTime): string {
  return 'batch' in value ? `batch ${value.batch}` : new Date(value.time).toISOString();
}

/**
 * The batches a range names, checked against what is sealed: the last sealed batch is the
 * pipeline item's, and a bound by time is found in the sealed manifests (the ledger's items of old
 * batches expire before the bucket's manifests do).
 */
async function resolveRange(
  source: RuntimeContext,
  from: BatchOrTime,
  to: BatchOrTime | undefined,
): Promise<{ from: number; to: number }> {
  const last = (await source.ledger.pipeline.get())?.lastSealed ?? 0;
  if (last === 0) {
    throw new ReplayError('no batch is sealed yet: there is nothing to replay', 'See sluice status.');
  }
  const timeOf = sealedBatchTimes(source.objects);
  const lastSealed = `the last sealed batch, ${last}`;
  const { from: first, to: final } = await batchRange(last, timeOf, from, to);
  if (first < 1) throw new ReplayError(`there is no batch ${first}`, 'Batches are numbered from 1.');
  if (first > last) {
    throw new ReplayError(
      `the first batch to replay, ${describeBound(from)}, is past ${lastSealed} (${new Date(await timeOf(last)).toISOString()})`,
      'Replay sealed batches: sluice batches list shows them.',
    );
  }
  if (to && 'batch' in to && to.batch > last) {
    throw new ReplayError(
      `batch ${to.batch} is not sealed: ${lastSealed}`,
      'Give --to at or before the last sealed batch, or leave it out to replay up to it.',
    );
  }
  if (final < first) {
    throw new ReplayError(
      `the last batch to replay, ${to ? describeBound(to) : final}, is before the first, batch ${first}`,
      'Give --to at or after --from.',
    );
  }
  return { from: first, to: final };
}

/** A sealed manifest as the pipeline's bucket has it: its bytes and what they say, checked. */
async function readSealedManifest(
  source: RuntimeContext,
  pipeline: string,
  batch: number,
): Promise<{ manifest: Manifest; body: Buffer }> {
  let body: Buffer;
  try {
    body = await source.objects.get(manifestKey(batchId(batch)));
  } catch (error) {
    if (!(error instanceof NotReadyError)) throw error;
    throw new ReplayError(
      `batch ${batch} has no manifest in s3://${source.config.bucket}/${manifestKey(batchId(batch))}`,
      'A batch sealed a moment ago gets its manifest at once (try again); an old one may have expired with the manifests/ prefix (90 days by default).',
    );
  }
  const manifest = parseManifest(body);
  if (manifest.pipeline !== pipeline) {
    throw new ReplayError(
      `batch ${batch} was sealed by pipeline '${manifest.pipeline}', not '${pipeline}'`,
      `Replay with the module of pipeline '${manifest.pipeline}', or read the run or stack of '${pipeline}'.`,
    );
  }
  return { manifest, body };
}

/** What `runBatches` needs. */
interface BatchRun<T, Out> {
  readonly source: RuntimeContext;
  readonly shadow: LocalRuntime<T, Out>;
  readonly pipeline: string;
  readonly plan: PlanSpec;
  readonly prefix: string;
  /** The first batch the shadow runs: 1 for a pipeline with state, else `range.from`. */
  readonly start: number;
  readonly range: { readonly from: number; readonly to: number };
  readonly onBatch?: (batch: ReplayedBatch) => void;
  readonly signal?: AbortSignal;
}

/** Runs batches `start`..`range.to` in the shadow, in order, until the end or the first failure. */
async function runBatches<T, Out>(run: BatchRun<T, Out>): Promise<ReplayedBatch[]> {
  const { source, shadow, range } = run;
  const copied = new Set<string>();
  const ran: ReplayedBatch[] = [];
  for (let n = batchId(run.start); n <= range.to; n = batchId(n + 1)) {
    if (run.signal?.aborted) {
      throw new ReplayError(
        `the replay was stopped before batch ${n}`,
        `What it wrote before stays under ${run.prefix}/; run it again to replay the rest.`,
      );
    }
    const { manifest, body } = await readSealedManifest(source, run.pipeline, n);
    checkPlan(manifest, run.plan);
    await copySegments(source.objects, shadow.ctx.objects, manifest, copied);
    await startSealedBatch(shadow.ctx, manifest, body);
    await shadow.settle();
    let item = await shadowItem(shadow, n);
    const skipped = item.status === 'failed' ? await skippedBecause(source.objects, n) : undefined;
    if (skipped !== undefined) {
      // It failed in the pipeline too, which skipped it: so does the shadow, for the same reason,
      // and its state moves past the batch as the pipeline's did.
      await shadow.skipBatch(n, skipped);
      item = await shadowItem(shadow, n);
    }
    const warmUp = n < range.from;
    const written =
      warmUp || item.status === 'failed' ? [] : await publish(shadow.ctx, source.objects, run.prefix, item);
    const batch: ReplayedBatch = {
      kind: 'sluice.replayed-batch@1',
      batch: n,
      time: manifest.time,
      warmUp,
      status: item.status,
      inputRecords: item.inputRecords,
      outputRecords: item.summary?.outputRecords ?? 0,
      deadLetters: item.summary?.deadLetters ?? 0,
      written,
      ...(item.status === 'failed' ? { failure: item.failure?.message ?? 'failed' } : {}),
    };
    ran.push(batch);
    run.onBatch?.(batch);
    if (item.status === 'failed') break;
  }
  return ran;
}

/** A sealed plan the replaying code cannot run stops the replay before the batch starts. */
function checkPlan(manifest: Manifest, plan: PlanSpec): void {
  try {
    checkSealedPlan(manifest.plan, plan);
  } catch (error) {
    if (!(error instanceof PlanMismatchError)) throw error;
    throw new ReplayError(
      `batch ${manifest.batch} was sealed under a plan this code cannot run: ${error.message}`,
      'Replay with code whose keyed stages and windows are those the batches were sealed with (a run started with --batch-interval needs the same here); record-level stages, sinks and partitions may change.',
    );
  }
}

/** Copies the segments a batch reads into the shadow bucket, those not copied before. */
async function copySegments(
  from: ObjectStore,
  to: ObjectStore,
  manifest: Manifest,
  copied: Set<string>,
): Promise<void> {
  const missing = segmentsOf(manifest).filter((key) => !copied.has(key));
  for (let i = 0; i < missing.length; i += COPIES_AT_ONCE) {
    await Promise.all(
      missing.slice(i, i + COPIES_AT_ONCE).map(async (key) => {
        let body: Buffer;
        try {
          body = await from.get(key);
        } catch (error) {
          if (!(error instanceof NotReadyError)) throw error;
          throw new ReplayError(
            `segment s3://${from.bucket}/${key} of batch ${manifest.batch} is gone from the bucket`,
            'A replay reads the input the bucket keeps: segments/ expires after the construct’s segmentRetention (30 days by default). Replay later batches.',
          );
        }
        await to.put(key, body);
        copied.add(key);
      }),
    );
  }
}

/**
 * Why the pipeline skipped a batch, as its skipped batch's dead letter says (written before the
 * batch is marked skipping), or `undefined` when the pipeline did not skip it.
 */
async function skippedBecause(objects: ObjectStore, batch: BatchId): Promise<string | undefined> {
  const body = await objects.getIfExists(skippedBatchKey(batch));
  if (!body) return undefined;
  const [letter] = fromJsonLines(body);
  const why = (letter as { skippedBecause?: unknown } | undefined)?.skippedBecause;
  return typeof why === 'string' ? why : 'skipped by the pipeline';
}

async function shadowItem<T, Out>(shadow: LocalRuntime<T, Out>, batch: BatchId): Promise<BatchItem> {
  const item = await shadow.ctx.ledger.batches.get(batch);
  if (!item) throw new Error(`the replay started batch ${batch} and has no ledger item for it`);
  return item;
}

/**
 * Copies what a batch wrote in the shadow into the pipeline's bucket under the prefix, at the same
 * relative keys: each partition's output (`<prefix>/batch-<n>/part-<p>.jsonl`), each task's dead
 * letters (`<prefix>/dead-letter/phase-<k>/...`) and a skipped batch's input
 * (`<prefix>/dead-letter/skipped/...`). Returns the keys written.
 */
async function publish(
  shadow: RuntimeContext,
  target: ObjectStore,
  prefix: string,
  item: BatchItem,
): Promise<string[]> {
  const written: string[] = [];
  const copy = async (key: string, as: string): Promise<void> => {
    await target.put(as, await shadow.objects.get(key), 'application/x-ndjson');
    written.push(as);
  };
  if (item.status === 'complete') {
    const own = outputPrefix(shadow.plan.spec);
    for (const p of item.summary?.outputPartitions ?? []) {
      await copy(outputKey(own, item.batch, partitionId(p)), outputKey(prefix, item.batch, partitionId(p)));
    }
  }
  if (item.status === 'skipped')
    await copy(skippedBatchKey(item.batch), `${prefix}/${skippedBatchKey(item.batch)}`);
  for (let phase = 0; phase < shadow.plan.phases.length; phase++) {
    for (const report of await shadow.ledger.reports.list(item.batch, phase)) {
      if (report.deadLetterKey) await copy(report.deadLetterKey, `${prefix}/${report.deadLetterKey}`);
    }
  }
  return written;
}

function report(
  ran: readonly ReplayedBatch[],
  where: Pick<ReplayReport, 'pipeline' | 'source' | 'bucket' | 'outputPrefix' | 'from' | 'to' | 'warmUp'>,
): ReplayReport {
  const published = ran.filter((b) => !b.warmUp && b.status !== 'failed');
  const failed = ran.find((b) => b.status === 'failed');
  const sum = (pick: (b: ReplayedBatch) => number): number =>
    published.reduce((total, b) => total + pick(b), 0);
  return {
    kind: 'sluice.replay@1',
    ...where,
    batches: published.length,
    inputRecords: sum((b) => b.inputRecords),
    outputRecords: sum((b) => b.outputRecords),
    deadLetters: sum((b) => b.deadLetters),
    objects: sum((b) => b.written.length),
    ...(failed ? { failed: { batch: failed.batch, message: failed.failure ?? 'failed' } } : {}),
  };
}

/**
 * One replayed batch as a line for a person.
 *
 * @example
 * formatReplayedBatch(batch); // 'batch 3 (2026-12-01T00:00:30.000Z): complete, 40 records in, 12 out, 0 dead-lettered, 2 objects written\n'
 */
export function formatReplayedBatch(batch: ReplayedBatch): string {
  const when = new Date(batch.time).toISOString();
  if (batch.status === 'failed')
    return `batch ${batch.batch} (${when}): FAILED: ${batch.failure ?? 'failed'}\n`;
  const counts = `${batch.inputRecords} records in, ${batch.outputRecords} out, ${batch.deadLetters} dead-lettered`;
  if (batch.warmUp)
    return `batch ${batch.batch} (${when}): ${batch.status}, ${counts} (warm-up, not published)\n`;
  return `batch ${batch.batch} (${when}): ${batch.status}, ${counts}, ${batch.written.length} objects written\n`;
}

/**
 * A replay's report as text for a person.
 *
 * @example
 * process.stdout.write(formatReplayReport(await replay(wordcount, options)));
 */
export function formatReplayReport(report: ReplayReport): string {
  const range = report.from === report.to ? `batch ${report.from}` : `batches ${report.from} to ${report.to}`;
  const warmUp =
    report.warmUp > 0
      ? `, after ${report.warmUp} warm-up batch${report.warmUp === 1 ? '' : 'es'} that rebuilt its state`
      : '';
  const lines = [
    `Replayed ${range} of ${report.pipeline} from ${report.source}${warmUp}:`,
    `  ${report.batches} batches published, ${report.inputRecords} records in, ${report.outputRecords} out, ${report.deadLetters} dead-lettered`,
    `  ${report.objects} objects written under s3://${report.bucket}/${report.outputPrefix}/`,
  ];
  if (report.failed) {
    lines.push(`  stopped at batch ${report.failed.batch}, which FAILED: ${report.failed.message}`);
  }
  return `${lines.join('\n')}\n`;
}
