import type { EventTimeHigh } from './watermark';
// zod/mini: the same validation without the full library in every function bundle.
import * as z from 'zod/mini';
import { parseBlocks } from './encoding/segment';
import { InvalidInputError } from './errors';
import type { BatchId } from './ids';
import type { PlanSpec } from './plan';
import type { Cursors, SegmentItem } from './batch';
import { stateLayoutSchema, type StateLayouts } from './state/layout';

/** A contiguous byte range of whole records in one segment: what a task reads with one ranged GET. */
export interface Slice {
  readonly segment: string;
  readonly shard: string;
  readonly start: number;
  readonly end: number;
  readonly records: number;
  /** Records at or below this sequence number belong to an earlier batch and are skipped. */
  readonly afterSeq?: string;
}

/** The sealed, immutable description of one batch: its input, split into tasks, and its plan. */
export interface Manifest {
  readonly kind: 'sluice.manifest@1';
  readonly pipeline: string;
  readonly batch: BatchId;
  /** Batch time: the end of the batch interval, epoch milliseconds. */
  readonly time: number;
  readonly plan: PlanSpec;
  readonly previousCursors: Cursors;
  readonly cursors: Cursors;
  readonly records: number;
  readonly bytes: number;
  /** tasks[i]: the slices transform task i reads. */
  readonly tasks: readonly (readonly Slice[])[];
  /**
   * For a pipeline with an event-time stage: the high of the watermark fold this batch was sealed
   * with (the watermark before lateness, see `lib/watermark.ts`), `null` before any.
   */
  readonly watermarkHigh?: EventTimeHigh;
  /**
   * For a pipeline with stateful stages: each one's state layout (partitions, and on a rescaling
   * batch the layout whose state its partitions re-hash). The batch's stateful partitions are these.
   */
  readonly layouts?: StateLayouts;
  /**
   * The batch whose state this batch's stateful partitions apply on, when the batches just before
   * it were quiet (no input, nothing due: their partitions did not run). Unset: the batch before.
   */
  readonly stateFrom?: number;
}

const sliceSchema = z.object({
  segment: z.string(),
  shard: z.string(),
  start: z.number().check(z.int(), z.nonnegative()),
  end: z.number().check(z.int(), z.nonnegative()),
  records: z.number().check(z.int(), z.nonnegative()),
  afterSeq: z.optional(z.string()),
});
const cursorsSchema = z.record(z.string(), z.object({ segmentStart: z.string(), lastSeq: z.string() }));
const manifestSchema = z.object({
  kind: z.literal('sluice.manifest@1'),
  pipeline: z.string(),
  batch: z.number().check(z.int(), z.positive()),
  time: z.number().check(z.int()),
  // The plan is compared with the bundle's by its fingerprint, so only that much is checked here.
  plan: z.looseObject({
    kind: z.literal('sluice.plan@1'),
    fingerprint: z.string(),
    stages: z.record(z.string(), z.string()),
  }),
  previousCursors: cursorsSchema,
  cursors: cursorsSchema,
  records: z.number().check(z.int(), z.nonnegative()),
  bytes: z.number().check(z.int(), z.nonnegative()),
  tasks: z.array(z.array(sliceSchema)),
  watermarkHigh: z.optional(z.nullable(z.number())),
  layouts: z.optional(z.record(z.string(), stateLayoutSchema)),
  stateFrom: z.optional(z.number().check(z.int(), z.nonnegative())),
});

/**
 * Parses and validates a manifest read from S3.
 *
 * @example
 * const manifest = parseManifest(await store.get(manifestKey(batch)));
 */
export function parseManifest(body: Uint8Array): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch (error) {
    throw new InvalidInputError('manifest is not JSON', {}, error);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) throw new InvalidInputError(`manifest is malformed: ${parsed.error.message}`);
  return parsed.data as unknown as Manifest;
}

/** The bytes a manifest is stored as: stable key order, so a re-sealed manifest is byte-identical. */
export function serializeManifest(manifest: Manifest): Buffer {
  return Buffer.from(`${JSON.stringify(manifest, null, 1)}\n`, 'utf8');
}

/** How many tasks and how many bytes each. */
export interface SplitOptions {
  readonly maxTasks: number;
  readonly targetBytes: number;
}

interface Block {
  readonly segment: SegmentItem;
  readonly start: number;
  readonly end: number;
  readonly records: number;
  readonly afterSeq?: string;
}

/**
 * Splits a batch's segments into at most `maxTasks` tasks of about equal bytes, at block
 * boundaries, so a hot shard is read by several tasks. Deterministic: the same segments (in the
 * same order) give the same split.
 *
 * @example
 * const tasks = splitIntoTasks(segments, { maxTasks: 8, targetBytes: 4 << 20 }, after);
 */
export function splitIntoTasks(
  segments: readonly SegmentItem[],
  options: SplitOptions,
  afterSeq: (segment: SegmentItem) => string | undefined = () => undefined,
): Slice[][] {
  const blocks: Block[] = [];
  for (const segment of segments) {
    const parsed = parseBlocks(segment.blocks);
    const skip = afterSeq(segment);
    parsed.forEach((block, i) => {
      const end = parsed[i + 1]?.offset ?? segment.bytes;
      blocks.push({
        segment,
        start: block.offset,
        end,
        records: block.records,
        ...(skip ? { afterSeq: skip } : {}),
      });
    });
  }
  const total = blocks.reduce((sum, b) => sum + (b.end - b.start), 0);
  if (blocks.length === 0) return [];
  const taskCount = Math.min(
    options.maxTasks,
    blocks.length,
    Math.max(1, Math.ceil(total / options.targetBytes)),
  );
  const tasks: Slice[][] = [];
  let current: Slice[] = [];
  let taken = 0;
  for (const [i, block] of blocks.entries()) {
    const remainingBlocks = blocks.length - i;
    const remainingTasks = taskCount - tasks.length;
    // Close the current task when it has its share of bytes, or when every remaining task needs
    // at least one of the remaining blocks.
    const share = (total * (tasks.length + 1)) / taskCount;
    if (current.length > 0 && remainingTasks > 1 && (taken >= share || remainingBlocks < remainingTasks)) {
      tasks.push(current);
      current = [];
    }
    const last = current[current.length - 1];
    if (last && last.segment === block.segment.key && last.end === block.start) {
      current[current.length - 1] = { ...last, end: block.end, records: last.records + block.records };
    } else {
      current.push({
        segment: block.segment.key,
        shard: block.segment.shard,
        start: block.start,
        end: block.end,
        records: block.records,
        ...(block.afterSeq ? { afterSeq: block.afterSeq } : {}),
      });
    }
    taken += block.end - block.start;
  }
  tasks.push(current);
  return tasks;
}
