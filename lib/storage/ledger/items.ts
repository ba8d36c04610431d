import * as z from 'zod/mini';
import {
  type BatchFailure,
  type BatchItem,
  type BatchSummary,
  type Cursors,
  type FailedMarker,
  type PipelineItem,
  type SegmentItem,
  type TaskAttempts,
  type TaskReport,
} from '../../batch';
import { padSeq } from '../../encoding/segment';
import { DataFormatError } from '../../errors';
import { batchId, shardId, taskId, type ShardId } from '../../ids';
import { stateLayoutSchema } from '../../state/layout';

/*
 * The ledger table's layout, in one place: every item's key and kind, and the schema it is parsed
 * with where it enters. Items are written with their `kind` and read back only if they have the
 * kind (and version) this code knows; anything else is a `DataFormatError`, never a guess.
 *
 *   pk                      sk                 kind
 *   pipeline                pipeline           sluice.ledger/pipeline@1
 *   shards                  shards             sluice.ledger/shards@1
 *   segment#<shard>         <padded firstSeq>  sluice.ledger/segment@1
 *   batch                   <padded batch>     sluice.ledger/batch@1
 *   task#<batch>#<phase>    <padded task>      sluice.ledger/task@1
 *   failed                  <padded batch>     sluice.ledger/failed@1
 *   state#<stage>#<part>    head | chunk#…     (lib/storage/state-store.ts; a layout from batch n > 1:
 *   state#<stage>#from-<n>#<part>)
 */

/**
 * The kinds of the ledger's items.
 *
 * @example
 * parse(schema, raw, LEDGER_KINDS.batch); // refuses any other kind
 */
export const LEDGER_KINDS = Object.freeze({
  pipeline: 'sluice.ledger/pipeline@1',
  shards: 'sluice.ledger/shards@1',
  segment: 'sluice.ledger/segment@1',
  batch: 'sluice.ledger/batch@1',
  task: 'sluice.ledger/task@1',
  failed: 'sluice.ledger/failed@1',
} as const);

/**
 * Partition keys of the ledger's items, and the prefixes of those that are per shard, batch or
 * stage: the one definition of the key layout. Item keys below and the IAM leading-key patterns
 * (`LEDGER_KEYS` in `lib/deployment.ts`) are built from it.
 *
 * @example
 * const pattern = `${LEDGER_PK.taskPrefix}*`; // 'task#*', an IAM leading-key pattern
 */
export const LEDGER_PK = Object.freeze({
  pipeline: 'pipeline',
  shards: 'shards',
  batch: 'batch',
  failed: 'failed',
  segmentPrefix: 'segment#',
  taskPrefix: 'task#',
  statePrefix: 'state#',
});

/**
 * A batch number as a sort key (and a part of one): zero-padded, so keys sort in batch order.
 *
 * @example
 * batchSk(42); // '0000000042'
 */
export const batchSk = (batch: number): string => String(batch).padStart(10, '0');

const segmentPk = (shard: ShardId): string => `${LEDGER_PK.segmentPrefix}${shard}`;
const taskPk = (batch: number, phase: number): string => `${LEDGER_PK.taskPrefix}${batchSk(batch)}#${phase}`;

/**
 * The keys of each item type.
 *
 * @example
 * LEDGER_ITEM_KEYS.task(7, 1, 3); // { pk: 'task#0000000007#1', sk: '000003' }
 */
export const LEDGER_ITEM_KEYS = Object.freeze({
  pipeline: Object.freeze({ pk: LEDGER_PK.pipeline, sk: 'pipeline' }),
  shards: Object.freeze({ pk: LEDGER_PK.shards, sk: 'shards' }),
  segmentPk,
  segment: (shard: ShardId, firstSeq: string) => ({ pk: segmentPk(shard), sk: padSeq(firstSeq) }),
  batchPk: LEDGER_PK.batch,
  batch: (batch: number) => ({ pk: LEDGER_PK.batch, sk: batchSk(batch) }),
  taskPk,
  task: (batch: number, phase: number, task: number) => ({
    pk: taskPk(batch, phase),
    sk: String(task).padStart(6, '0'),
  }),
  failedPk: LEDGER_PK.failed,
  failed: (batch: number) => ({ pk: LEDGER_PK.failed, sk: batchSk(batch) }),
  /** A stateful partition's items: of the stage's first layout, or of the layout since batch `since`. */
  statePk: (stage: string, partition: number, since = 1): string =>
    since === 1
      ? `${LEDGER_PK.statePrefix}${stage}#${partition}`
      : `${LEDGER_PK.statePrefix}${stage}#from-${since}#${partition}`,
});

const count = z.number().check(z.int(), z.nonnegative());
const cursors = z.record(z.string(), z.object({ segmentStart: z.string(), lastSeq: z.string() }));
const fold = z.object({ high: z.nullable(z.number()), through: count });
/** DynamoDB number sets come back as `Set`s; lists written by older paths as arrays. */
const numberSet = z.union([z.set(z.number()), z.array(z.number())]);

const pipelineSchema = z.object({
  kind: z.literal(LEDGER_KINDS.pipeline),
  zeroTime: z.number(),
  lastSealed: count,
  cursors,
  watermarkFold: z.optional(fold),
  paused: z.optional(z.object({ at: z.number(), reason: z.string() })),
  layouts: z.optional(z.record(z.string(), stateLayoutSchema)),
  settledThrough: z.optional(count),
  expiredThrough: z.optional(count),
  asleep: z.optional(z.number()),
  wakeAt: z.optional(z.number()),
});

const shardsSchema = z.object({ kind: z.literal(LEDGER_KINDS.shards), ids: z.set(z.string()) });

const usageSchema = z.object({
  durationMs: z.number().check(z.gte(0)),
  requests: z.record(z.string(), count),
  readUnits: z.number().check(z.gte(0)),
  writeUnits: z.number().check(z.gte(0)),
});

/**
 * The schema of a stateful partition's `StateUsage`, as task reports and progress records keep it.
 *
 * @example
 * const parsed = stateUsageSchema.safeParse(raw);
 */
export const stateUsageSchema = z.object({
  keys: count,
  chunks: count,
  bytes: count,
  chunksRead: count,
  bytesRead: count,
  chunksWritten: count,
  bytesWritten: count,
});

const segmentSchema = z.object({
  kind: z.literal(LEDGER_KINDS.segment),
  shard: z.string(),
  firstSeq: z.string(),
  lastSeq: z.string(),
  key: z.string(),
  records: count,
  bytes: count,
  blocks: z.string(),
  format: z.string(),
  usage: z.optional(usageSchema),
});

const summarySchema = z.object({
  inputRecords: count,
  deadLetters: count,
  outputRecords: count,
  outputPartitions: z.array(count),
});

const failureSchema = z.object({
  message: z.string(),
  phase: count,
  task: count,
  stage: z.optional(z.string()),
  at: z.optional(z.number()),
  duringSkip: z.optional(z.boolean()),
});

const batchSchema = z.looseObject({
  kind: z.literal(LEDGER_KINDS.batch),
  batch: z.number().check(z.int(), z.positive()),
  time: z.number(),
  status: z.enum(['sealed', 'complete', 'failed', 'skipping', 'skipped']),
  cursors,
  previousCursors: cursors,
  inputRecords: count,
  inputBytes: count,
  tasks: count,
  sealedAt: z.number(),
  sealMs: z.optional(z.number().check(z.gte(0))),
  sealUsage: z.optional(usageSchema),
  ingestUsage: z.optional(z.extend(usageSchema, { invocations: count })),
  updatedAt: z.number(),
  completedAt: z.optional(z.number()),
  summary: z.optional(summarySchema),
  failure: z.optional(failureSchema),
  lastError: z.optional(z.string()),
  watermarkFold: z.optional(fold),
  layouts: z.optional(z.record(z.string(), stateLayoutSchema)),
  eventTimeHigh: z.optional(z.nullable(z.number())),
  countedDeadLetters: z.optional(count),
  countedOutputRecords: z.optional(count),
  countedOutputPartitions: z.optional(numberSet),
  countedReadUnits: z.optional(z.number().check(z.nonnegative())),
  countedWriteUnits: z.optional(z.number().check(z.nonnegative())),
  quietUntil: z.optional(z.number()),
  quietHigh: z.optional(z.number()),
  stateFrom: z.optional(count),
});

const reportSchema = z.object({
  kind: z.literal(LEDGER_KINDS.task),
  batch: z.number().check(z.int(), z.positive()),
  phase: count,
  task: count,
  shuffle: z.optional(z.string()),
  index: z.optional(z.array(count)),
  withData: numberSet,
  recordsIn: count,
  recordsOut: count,
  deadLetters: count,
  deadLetterKey: z.optional(z.string()),
  output: z.optional(z.string()),
  bytesRead: count,
  bytesWritten: count,
  commitsState: z.optional(z.boolean()),
  eventTimeHigh: z.optional(z.number()),
  eventTimeLow: z.optional(z.number()),
  // By kind name: a kind this version does not know (written by a newer one) is kept, not refused.
  deadLetterKinds: z.optional(z.record(z.string(), count)),
  state: z.optional(stateUsageSchema),
  skipped: z.optional(z.boolean()),
  spills: z.optional(count),
  mergePasses: z.optional(count),
  quietUntil: z.optional(z.number()),
  quietHigh: z.optional(z.number()),
  usage: z.optional(usageSchema),
});

const failedSchema = z.object({
  kind: z.literal(LEDGER_KINDS.failed),
  batch: z.number().check(z.int(), z.positive()),
  message: z.string(),
  at: z.number(),
});

/** Parses one item with its schema, or says which item is not what this code reads. */
function parse<T>(schema: z.ZodMiniType<T>, raw: Record<string, unknown>, what: string): T {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const where = `${String(raw.pk)} ${String(raw.sk)}`;
  throw new DataFormatError(`ledger item ${where} is not a ${what}: ${parsed.error.message}`);
}

const sorted = (values: Iterable<number>): number[] => [...values].sort((a, b) => a - b);

/** The attributes of one kind that end in a phase number (`done_1`), as numbers per phase. */
function perPhase(raw: Record<string, unknown>, prefix: string): Record<number, number[]> {
  const result: Record<number, number[]> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (!name.startsWith(prefix)) continue;
    const phase = Number(name.slice(prefix.length));
    const parsed = numberSet.safeParse(value);
    if (!Number.isInteger(phase) || !parsed.success) {
      throw new DataFormatError(`ledger attribute ${name} is not a set of task numbers`);
    }
    result[phase] = sorted(parsed.data);
  }
  return result;
}

/** The `attempts_<phase>_<task>` and `since_<phase>_<task>` attributes of a batch item. */
function attemptsOf(raw: Record<string, unknown>): TaskAttempts[] {
  const result: TaskAttempts[] = [];
  for (const [name, value] of Object.entries(raw)) {
    const match = /^attempts_(\d+)_(\d+)$/.exec(name);
    if (!match) continue;
    const phase = Number(match[1]);
    const task = Number(match[2]);
    result.push({ phase, task, attempts: Number(value), since: Number(raw[`since_${phase}_${task}`] ?? 0) });
  }
  return result.sort((a, b) => a.phase - b.phase || a.task - b.task);
}

/**
 * The attributes that hold the retry budget a task has used: `attempts_<phase>_<task>` and
 * `since_<phase>_<task>`, as expression names `#a<i>` and `#s<i>`.
 *
 * @example
 * budgetNames([{ phase: 1, task: 3 }]).names; // { '#a0': 'attempts_1_3', '#s0': 'since_1_3' }
 */
export function budgetNames(tasks: readonly { readonly phase: number; readonly task: number }[]): {
  names: Record<string, string>;
  attempts: string[];
  since: string[];
} {
  const names: Record<string, string> = {};
  const attempts: string[] = [];
  const since: string[] = [];
  tasks.forEach(({ phase, task }, i) => {
    names[`#a${i}`] = `attempts_${phase}_${task}`;
    names[`#s${i}`] = `since_${phase}_${task}`;
    attempts.push(`#a${i}`);
    since.push(`#s${i}`);
  });
  return { names, attempts, since };
}

/**
 * The pipeline item as stored.
 *
 * @example
 * await dynamo.send(new PutCommand({ TableName, Item: pipelineItem({ zeroTime, lastSealed: 0, cursors: {} }) }));
 */
export function pipelineItem(item: PipelineItem): Record<string, unknown> {
  return { ...LEDGER_ITEM_KEYS.pipeline, kind: LEDGER_KINDS.pipeline, ...item };
}

/**
 * Parses the pipeline item.
 *
 * @example
 * const pipeline = parsePipelineItem(out.Item);
 */
export function parsePipelineItem(raw: Record<string, unknown>): PipelineItem {
  const item = parse(pipelineSchema, raw, LEDGER_KINDS.pipeline);
  return {
    zeroTime: item.zeroTime,
    lastSealed: item.lastSealed,
    cursors: item.cursors satisfies Cursors,
    ...(item.watermarkFold ? { watermarkFold: item.watermarkFold } : {}),
    ...(item.paused ? { paused: item.paused } : {}),
    ...(item.layouts ? { layouts: item.layouts } : {}),
    ...(item.settledThrough === undefined ? {} : { settledThrough: item.settledThrough }),
    ...(item.expiredThrough === undefined ? {} : { expiredThrough: item.expiredThrough }),
    ...(item.asleep === undefined ? {} : { asleep: item.asleep }),
    ...(item.wakeAt === undefined ? {} : { wakeAt: item.wakeAt }),
  };
}

/**
 * Parses the shards item: the shards ingest has seen, sorted.
 *
 * @example
 * parseShardsItem({ kind: 'sluice.ledger/shards@1', ids: new Set(['lines/shardId-0']) });
 */
export function parseShardsItem(raw: Record<string, unknown>): ShardId[] {
  return [...parse(shardsSchema, raw, LEDGER_KINDS.shards).ids].sort().map(shardId);
}

/**
 * A segment item as stored.
 *
 * @example
 * await dynamo.send(new PutCommand({ TableName, Item: segmentItem(segment) }));
 */
export function segmentItem(segment: SegmentItem): Record<string, unknown> {
  return {
    ...LEDGER_ITEM_KEYS.segment(segment.shard, segment.firstSeq),
    kind: LEDGER_KINDS.segment,
    ...segment,
  };
}

/**
 * Parses a segment item.
 *
 * @example
 * const segments = (out.Items ?? []).map(parseSegmentItem);
 */
export function parseSegmentItem(raw: Record<string, unknown>): SegmentItem {
  const { kind: _kind, ...segment } = parse(segmentSchema, raw, LEDGER_KINDS.segment);
  return { ...segment, shard: shardId(segment.shard) };
}

/**
 * A newly sealed batch's item as stored: `sealed`, or `complete` already for a quiet batch (no
 * input, nothing due: `quietUntil` set), with its empty summary.
 *
 * @example
 * await dynamo.send(new PutCommand({ TableName, Item: batchItem(sealed) }));
 */
export function batchItem(
  item: Omit<BatchItem, 'done' | 'withData' | 'expected' | 'status' | 'attempts' | 'counted'>,
): Record<string, unknown> {
  return {
    ...LEDGER_ITEM_KEYS.batch(item.batch),
    kind: LEDGER_KINDS.batch,
    ...item,
    status: statusAtSeal(item),
  };
}

/**
 * A batch's status when its item is created: `sealed`, or `complete` for a quiet batch.
 *
 * @example
 * statusAtSeal({ quietUntil: QUIET_FOREVER }); // 'complete'
 */
export function statusAtSeal(item: Pick<BatchItem, 'quietUntil'>): 'sealed' | 'complete' {
  return item.quietUntil === undefined ? 'sealed' : 'complete';
}

/**
 * Parses a batch item, with its per-phase sets and retry budgets.
 *
 * @example
 * const item = parseBatchItem(out.Attributes ?? {});
 */
export function parseBatchItem(raw: Record<string, unknown>): BatchItem {
  const item = parse(batchSchema, raw, LEDGER_KINDS.batch);
  return {
    batch: batchId(item.batch),
    time: item.time,
    status: item.status,
    cursors: item.cursors,
    previousCursors: item.previousCursors,
    inputRecords: item.inputRecords,
    inputBytes: item.inputBytes,
    tasks: item.tasks,
    sealedAt: item.sealedAt,
    ...(item.sealMs === undefined ? {} : { sealMs: item.sealMs }),
    ...(item.sealUsage === undefined ? {} : { sealUsage: item.sealUsage }),
    ...(item.ingestUsage === undefined ? {} : { ingestUsage: item.ingestUsage }),
    updatedAt: item.updatedAt,
    ...(item.completedAt === undefined ? {} : { completedAt: item.completedAt }),
    ...(item.summary === undefined ? {} : { summary: item.summary satisfies BatchSummary }),
    ...(item.failure === undefined ? {} : { failure: item.failure satisfies BatchFailure }),
    ...(item.lastError === undefined ? {} : { lastError: item.lastError }),
    attempts: attemptsOf(raw),
    ...(item.watermarkFold === undefined ? {} : { watermarkFold: item.watermarkFold }),
    ...(item.layouts === undefined ? {} : { layouts: item.layouts }),
    ...(item.eventTimeHigh === undefined ? {} : { eventTimeHigh: item.eventTimeHigh }),
    ...(item.quietUntil === undefined ? {} : { quietUntil: item.quietUntil }),
    ...(item.quietHigh === undefined ? {} : { quietHigh: item.quietHigh }),
    ...(item.stateFrom === undefined ? {} : { stateFrom: item.stateFrom }),
    done: perPhase(raw, 'done_'),
    withData: perPhase(raw, 'withData_'),
    expected: perPhase(raw, 'expected_'),
    counted: {
      deadLetters: item.countedDeadLetters ?? 0,
      outputRecords: item.countedOutputRecords ?? 0,
      outputPartitions: sorted(item.countedOutputPartitions ?? []),
      readUnits: item.countedReadUnits ?? 0,
      writeUnits: item.countedWriteUnits ?? 0,
    },
  };
}

/**
 * A task report as stored.
 *
 * @example
 * await dynamo.send(new PutCommand({ TableName, Item: taskReportItem(report) }));
 */
export function taskReportItem(report: TaskReport): Record<string, unknown> {
  return {
    ...LEDGER_ITEM_KEYS.task(report.batch, report.phase, report.task),
    kind: LEDGER_KINDS.task,
    ...report,
  };
}

/**
 * Parses a task report.
 *
 * @example
 * const reports = items.map(parseTaskReport);
 */
export function parseTaskReport(raw: Record<string, unknown>): TaskReport {
  const { kind: _kind, ...report } = parse(reportSchema, raw, LEDGER_KINDS.task);
  return {
    ...report,
    batch: batchId(report.batch),
    task: taskId(report.task),
    withData: sorted(report.withData),
  };
}

/**
 * A failed batch's marker as stored.
 *
 * @example
 * await dynamo.send(new PutCommand({ TableName, Item: failedItem({ batch, message, at }) }));
 */
export function failedItem(marker: FailedMarker): Record<string, unknown> {
  return { ...LEDGER_ITEM_KEYS.failed(marker.batch), kind: LEDGER_KINDS.failed, ...marker };
}

/**
 * Parses a failed batch's marker.
 *
 * @example
 * const markers = items.map(parseFailedItem);
 */
export function parseFailedItem(raw: Record<string, unknown>): FailedMarker {
  const item = parse(failedSchema, raw, LEDGER_KINDS.failed);
  return { batch: batchId(item.batch), message: item.message, at: item.at };
}
