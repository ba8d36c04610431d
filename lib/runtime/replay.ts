import { SluiceError } from '../errors';
import type { BatchItem } from '../batch';
import type { Manifest } from '../manifest';
import { outputPrefix, type PlanSpec } from '../plan';
import type { SealedBatch } from '../storage/ledger/batch-items';
import { manifestKey, S3_PREFIXES } from '../storage/keys';
import type { RuntimeContext } from './context';
import { driveBatch } from './progress';
import { statefulPartitions } from '../state/layout';

/**
 * A replay that cannot be done as asked: an output prefix that would mix with the pipeline's own
 * objects, a range of batches that is not sealed, a batch whose sealed input is gone or was sealed
 * for another pipeline or a plan the replaying code cannot run.
 *
 * @example
 * if (error instanceof ReplayError) console.error(`${error.message}\n  ${error.hint}`);
 */
export class ReplayError extends SluiceError {
  override readonly name = 'ReplayError';
  constructor(message: string, hint: string) {
    super(message, { retryable: false, hint });
  }
}

/** Characters a replay's output prefix may have: those `s3Jsonl` allows in its own. */
const PREFIX_CHARACTERS = /^[a-zA-Z0-9!_.'()/=-]+$/;

/**
 * The output prefix a replay writes under, without leading or trailing slashes, once it is known
 * to stay clear of everything the pipeline writes in its bucket: the segments, manifests, shuffle
 * files, dead letters and progress records, and the batch output of each plan given (the sealed
 * one and the replaying code's, whose sink prefixes may differ). Neither may hold the other: a
 * replay's objects must never be taken for the pipeline's, nor listed with them.
 *
 * @example
 * replayOutputPrefix('/replays/2026-12-01/', [plan.spec]); // 'replays/2026-12-01'
 * replayOutputPrefix('wordcount', [plan.spec]); // ReplayError: it holds the output, wordcount/counts/
 */
export function replayOutputPrefix(prefix: string, plans: readonly PlanSpec[]): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, '');
  if (!PREFIX_CHARACTERS.test(trimmed) || trimmed.includes('//')) {
    throw new ReplayError(
      `output prefix '${prefix}' is not a usable S3 prefix`,
      "Give a prefix of letters, digits and !_.'()/=- such as replays/2026-12-01.",
    );
  }
  const mine = `${trimmed}/`;
  const own = [...Object.values(S3_PREFIXES), ...new Set(plans.map((plan) => `${outputPrefix(plan)}/`))];
  for (const theirs of own) {
    if (mine.startsWith(theirs) || theirs.startsWith(mine)) {
      throw new ReplayError(
        `output prefix '${trimmed}' overlaps the pipeline's own ${theirs}`,
        `A replay writes beside the pipeline, never among its objects: give a prefix that neither holds nor is inside ${own.join(', ')} (such as replays/<name>).`,
      );
    }
  }
  return trimmed;
}

/**
 * Whether a plan keeps state across batches (windows, `updateStateByKey`, `mapWithState`,
 * event-time windows, windowed joins): a replay of such a plan rebuilds its state from batch 1.
 *
 * @example
 * keepsState(planPipeline(wordcount).spec); // false
 */
export function keepsState(plan: PlanSpec): boolean {
  return Object.keys(statefulPartitions(plan)).length > 0;
}

/**
 * The ledger item of a batch sealed with `manifest`, as the seal wrote it: the manifest holds
 * every field a running batch reads (its time, cursors, tasks, input, watermark and state layouts).
 * The fold's high is the watermark the batch runs with; how many batches the original fold had
 * covered is not in the manifest, and only a later seal (which a replay never makes) reads it.
 *
 * @example
 * await ctx.ledger.batches.create(sealedBatchOf(manifest, ctx.clock.now()));
 */
export function sealedBatchOf(manifest: Manifest, now: number): SealedBatch {
  return {
    batch: manifest.batch,
    time: manifest.time,
    cursors: manifest.cursors,
    previousCursors: manifest.previousCursors,
    inputRecords: manifest.records,
    inputBytes: manifest.bytes,
    tasks: manifest.tasks.length,
    sealedAt: now,
    updatedAt: now,
    ...(manifest.watermarkHigh === undefined
      ? {}
      : { watermarkFold: { high: manifest.watermarkHigh, through: manifest.batch - 1 } }),
    ...(manifest.layouts ? { layouts: manifest.layouts } : {}),
  };
}

/**
 * The input segments a sealed batch reads, each once, in manifest order: what a replay copies
 * before it starts the batch.
 *
 * @example
 * for (const key of segmentsOf(manifest)) await shadow.put(key, await source.get(key));
 */
export function segmentsOf(manifest: Manifest): string[] {
  return [...new Set(manifest.tasks.flatMap((slices) => slices.map((slice) => slice.segment)))];
}

/**
 * Starts a batch sealed elsewhere, from its sealed manifest, exactly as the coordinator starts one
 * it sealed: its manifest (the same bytes), its ledger item, the pipeline item's `lastSealed`, then
 * phase 0 (`driveBatch`). The input segments must already be in the context's bucket, and batches
 * must be started in order, each after the one before it has finished, as a stateful partition
 * applies them. The manifest goes first: once the item exists the sweep may look for it, and
 * would otherwise rebuild it from segment items this ledger does not have.
 *
 * @example
 * const body = await source.objects.get(manifestKey(batch));
 * await startSealedBatch(shadow.ctx, parseManifest(body), body);
 */
export async function startSealedBatch(
  ctx: RuntimeContext,
  manifest: Manifest,
  body: Uint8Array,
): Promise<BatchItem> {
  await ctx.objects.put(manifestKey(manifest.batch), body, 'application/json');
  const { item } = await ctx.ledger.batches.create(sealedBatchOf(manifest, ctx.clock.now()));
  const recorded = await ctx.ledger.pipeline.recordSeal(
    item.batch,
    item.cursors,
    item.watermarkFold,
    item.layouts,
  );
  if (!recorded) {
    const lastSealed = (await ctx.ledger.pipeline.get())?.lastSealed ?? 0;
    throw new ReplayError(
      `batch ${manifest.batch} cannot start after batch ${lastSealed}`,
      'Batches are started in order, each after the one before it.',
    );
  }
  await driveBatch(ctx, item, { redrive: true });
  return item;
}
