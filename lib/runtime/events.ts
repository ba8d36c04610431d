// zod/mini: the same validation without the full library in every function bundle.
import * as z from 'zod/mini';
import { InvalidInputError } from '../errors';
import { batchId, taskId, type BatchId, type TaskId } from '../ids';

/**
 * Starts one task of one phase of a batch: a transform task (phase 0) or a reduce partition. `skip`
 * starts a stateful partition's part in skipping the batch (its state moves past it unchanged); it
 * is set by whoever starts the tasks of a skipping batch, so a task never has to look it up.
 */
export interface TaskEvent {
  readonly kind: 'sluice.task@1';
  readonly pipeline: string;
  readonly batch: BatchId;
  readonly phase: number;
  readonly task: TaskId;
  readonly skip?: true;
}

const taskEventSchema = z.object({
  kind: z.literal('sluice.task@1'),
  pipeline: z.string(),
  batch: z.number().check(z.int(), z.positive()),
  phase: z.number().check(z.int(), z.nonnegative()),
  task: z.number().check(z.int(), z.nonnegative()),
  skip: z.optional(z.literal(true)),
});

/**
 * Validates a task event where it enters a function.
 *
 * @example
 * const event = parseTaskEvent(JSON.parse(payload));
 */
export function parseTaskEvent(raw: unknown): TaskEvent {
  const parsed = taskEventSchema.safeParse(raw);
  if (!parsed.success) throw new InvalidInputError(`not a task event: ${parsed.error.message}`);
  return { ...parsed.data, batch: batchId(parsed.data.batch), task: taskId(parsed.data.task) };
}

/**
 * What the coordinator is invoked with: the schedule's tick every minute (and locally, a tick per
 * batch interval). `stuckBefore` makes the sweep treat batches idle since then as stuck (the local
 * runtime uses it to re-drive at once what Lambda would re-drive after `sweepAfterMs`). `sweep:
 * false` (a coordinator ingest woke to seal a batch) leaves the sweep to the schedule's ticks.
 */
export interface TickEvent {
  readonly kind: 'sluice.tick@1';
  readonly pipeline: string;
  readonly stuckBefore?: number;
  readonly sweep?: boolean;
}

const tickEventSchema = z.object({
  kind: z.literal('sluice.tick@1'),
  pipeline: z.string(),
  stuckBefore: z.optional(z.number()),
  sweep: z.optional(z.boolean()),
});

/**
 * Validates a coordinator event where it enters the function, and that it is for this pipeline.
 *
 * @example
 * const tick = parseTickEvent(event, pipeline.name);
 */
export function parseTickEvent(raw: unknown, pipeline: string): TickEvent {
  const parsed = tickEventSchema.safeParse(raw);
  if (!parsed.success) throw new InvalidInputError(`not a coordinator tick: ${parsed.error.message}`);
  if (parsed.data.pipeline !== pipeline) {
    throw new InvalidInputError(`a tick for pipeline '${parsed.data.pipeline}' reached '${pipeline}'`);
  }
  const { kind, stuckBefore, sweep } = parsed.data;
  return {
    kind,
    pipeline,
    ...(stuckBefore === undefined ? {} : { stuckBefore }),
    ...(sweep === undefined ? {} : { sweep }),
  };
}

/** One record of a Kinesis event-source mapping event, as Lambda delivers it. */
export interface KinesisEventRecord {
  readonly eventID: string;
  readonly eventSourceARN: string;
  readonly kinesis: {
    readonly sequenceNumber: string;
    readonly data: string;
    readonly partitionKey: string;
    readonly approximateArrivalTimestamp: number;
  };
}

/** The Kinesis event a Lambda event-source mapping delivers (one shard per event). */
export interface KinesisEvent {
  readonly Records: readonly KinesisEventRecord[];
}

const kinesisEventSchema = z.object({
  Records: z.array(
    z.object({
      eventID: z.string(),
      eventSourceARN: z.string(),
      kinesis: z.object({
        sequenceNumber: z.string().check(z.regex(/^\d+$/)),
        data: z.string(),
        partitionKey: z.string(),
        approximateArrivalTimestamp: z.number(),
      }),
    }),
  ),
});

/**
 * Validates a Kinesis event where it enters the ingest function.
 *
 * @example
 * const event = parseKinesisEvent(lambdaEvent);
 */
export function parseKinesisEvent(raw: unknown): KinesisEvent {
  const parsed = kinesisEventSchema.safeParse(raw);
  if (!parsed.success) throw new InvalidInputError(`not a Kinesis event: ${parsed.error.message}`);
  return parsed.data;
}
