import * as z from 'zod/mini';
import {
  DEAD_LETTER_KINDS,
  type BatchItem,
  type DeadLetterKind,
  type StateUsage,
  type TaskReport,
  type TaskUsage,
} from '../batch';
import { priceTasks } from '../cost/model';
import { US_EAST_1 } from '../cost/prices';
import { DEFAULT_MEMORY_MB, type FunctionKind } from '../deployment';
import { DataFormatError } from '../errors';
import { batchId, type BatchId } from '../ids';
import type { Plan } from '../plan';
import { progressKey } from '../storage/keys';
import { stateUsageSchema } from '../storage/ledger/items';
import type { RuntimeContext } from './context';

/** One phase of a batch: its tasks and how long they ran. */
export interface PhaseProgress {
  readonly phase: number;
  /** The phase's function id (the first stage's id, or `read`). */
  readonly function: string;
  readonly tasks: number;
  /** Task durations up to their reports, ms (of the tasks whose invocations were metered). */
  readonly taskMs: { readonly min: number; readonly median: number; readonly max: number };
  readonly recordsIn: number;
  readonly recordsOut: number;
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly deadLetters: number;
}

/**
 * One stateful stage's state after a batch, over its partitions: its size (keys, chunks and their
 * encoded bytes) and what the batch read to load it and wrote to commit it.
 */
export interface StateProgress extends StateUsage {
  readonly stage: string;
  /** Partitions that ran a task in the batch (the others' state was not touched). */
  readonly partitions: number;
}

/** Invocations of one kind of function in a batch, and how long they ran. */
export interface FunctionTime {
  readonly invocations: number;
  readonly durationMs: number;
}

/** What each step of a batch cost at us-east-1 list prices, US dollars. */
export interface StepCosts {
  /** Writing the batch's segments ahead (the ingest invocations). */
  readonly ingest: number;
  /** The coordinator's sealing pass (its share of the coordinator's invocation). */
  readonly seal: number;
  /** The transform and reduce tasks. */
  readonly tasks: number;
}

/**
 * What one finished batch did and cost, as Spark's `StreamingQueryProgress` and Streaming tab
 * show it: written once per batch to `progress/` beside its output, read by `testPipeline`
 * results, `sluice local run --json` and the CloudWatch metrics.
 */
export interface BatchProgress {
  readonly kind: 'sluice.progress@2';
  readonly batch: BatchId;
  /** The batch time: the end of its interval. */
  readonly time: number;
  readonly sealedAt: number;
  /** How long sealing took (gathering the input, splitting it into tasks, creating the item), ms. */
  readonly sealMs: number;
  readonly completedAt: number;
  readonly inputRecords: number;
  /** Bytes of the batch's input as written ahead to segments (records and their framing). */
  readonly inputBytes: number;
  readonly outputRecords: number;
  readonly deadLetters: number;
  /** Dead letters by kind (`decode`, `stage`, `late`, ...: see `DeadLetter.kind`). */
  readonly deadLettersByKind: Readonly<Partial<Record<DeadLetterKind, number>>>;
  /** Input records per second of the batch interval. */
  readonly inputRate: number;
  /** Input records per second of processing (sealing to completion). */
  readonly processingRate: number;
  /** From the batch time to sealing, ms. */
  readonly schedulingDelayMs: number;
  /** From sealing to completion, ms. */
  readonly processingMs: number;
  /** From the batch time to completion, ms. */
  readonly totalDelayMs: number;
  /** Event-time pipelines: the lowest and highest event time of this batch's own records. */
  readonly eventTimeLow?: number;
  readonly eventTimeHigh?: number;
  /**
   * Event-time pipelines: the watermark the batch ran with (the high of the batches before it,
   * less the allowed lateness), once any event time has been seen.
   */
  readonly watermark?: number;
  readonly phases: readonly PhaseProgress[];
  /** Every stateful stage's state after the batch. */
  readonly state: readonly StateProgress[];
  /**
   * AWS requests by operation: the batch's ingest invocations, its sealing pass and its tasks,
   * each up to the write that records it.
   */
  readonly requests: Readonly<Record<string, number>>;
  readonly readUnits: number;
  readonly writeUnits: number;
  /**
   * Invocations and their durations by function kind: ingest's of the batch's segments, the
   * coordinator's sealing pass (no invocation of its own), transform and reduce tasks.
   */
  readonly functions: Readonly<Partial<Record<FunctionKind, FunctionTime>>>;
  /** Lambda GB-seconds of the same (at the default memory of each function's kind). */
  readonly gbSeconds: number;
  /** What the same cost at us-east-1 list prices, US dollars. */
  readonly costUsd: number;
  readonly costByStep: StepCosts;
}

function median(sorted: readonly number[]): number {
  if (sorted.length === 0) return 0;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/**
 * A finished batch's progress from its ledger item (as completed) and its tasks' reports, by phase.
 *
 * @example
 * const progress = batchProgress(ctx, done, await reportsOf(ctx, done));
 */
export function batchProgress(
  ctx: Pick<RuntimeContext, 'plan'>,
  item: BatchItem,
  completedAt: number,
  reports: readonly (readonly TaskReport[])[],
): BatchProgress {
  const intervalS = ctx.plan.spec.batchIntervalMs / 1000;
  const processingMs = completedAt - item.sealedAt;
  const phases = ctx.plan.phases.map((phase, index): PhaseProgress => {
    const phaseReports = reports[index] ?? [];
    const durations = phaseReports
      .flatMap((report) => (report.usage ? [report.usage.durationMs] : []))
      .sort((a, b) => a - b);
    const sum = (pick: (report: TaskReport) => number): number =>
      phaseReports.reduce((total, report) => total + pick(report), 0);
    return {
      phase: index,
      function: phase.spec.function,
      tasks: phaseReports.length,
      taskMs: {
        min: durations[0] ?? 0,
        median: median(durations),
        max: durations[durations.length - 1] ?? 0,
      },
      recordsIn: sum((r) => r.recordsIn),
      recordsOut: sum((r) => r.recordsOut),
      bytesRead: sum((r) => r.bytesRead),
      bytesWritten: sum((r) => r.bytesWritten),
      deadLetters: sum((r) => r.deadLetters),
    };
  });
  const tasks = reports.flatMap((phaseReports, index) =>
    phaseReports.flatMap((report) =>
      report.usage
        ? [{ kind: index === 0 ? ('transform' as const) : ('reduce' as const), usage: report.usage }]
        : [],
    ),
  );
  // Ingest is priced per segment's invocation; the seal is a pass inside a coordinator invocation
  // that is billed as a whole (see coordinatorSeconds), so it adds no invocation of its own.
  const ingest = item.ingestUsage
    ? [{ kind: 'ingest' as const, usage: item.ingestUsage, invocations: item.ingestUsage.invocations }]
    : [];
  const seal = item.sealUsage
    ? [{ kind: 'coordinator' as const, usage: item.sealUsage, invocations: 0 }]
    : [];
  // The units tasks used after their reports' usage was taken (the report's put, the state's
  // commit), which their done marks counted: units only (no invocation, no time).
  const { readUnits: lateRead, writeUnits: lateWrite } = item.counted;
  const late =
    lateRead > 0 || lateWrite > 0
      ? [
          {
            kind: 'reduce' as const,
            usage: { durationMs: 0, requests: {}, readUnits: lateRead, writeUnits: lateWrite },
            invocations: 0,
          },
        ]
      : [];
  const invoked = [...ingest, ...seal, ...tasks];
  const metered = [...invoked, ...late];
  const requests: Record<string, number> = {};
  for (const { usage } of metered) {
    for (const [operation, count] of Object.entries(usage.requests)) {
      requests[operation] = (requests[operation] ?? 0) + count;
    }
  }
  const price = (entries: typeof metered): number => priceTasks(entries, US_EAST_1, DEFAULT_MEMORY_MB).total;
  const bill = priceTasks(metered, US_EAST_1, DEFAULT_MEMORY_MB);
  const gbSeconds = bill.lines.find((line) => line.item === 'GB-seconds')?.quantity ?? 0;
  const allReports = reports.flat();
  const eventTimeLow = allReports.reduce<number | undefined>(
    (low, r) =>
      r.eventTimeLow !== undefined && (low === undefined || r.eventTimeLow < low) ? r.eventTimeLow : low,
    undefined,
  );
  const lateness = latenessOf(ctx.plan);
  const high = item.watermarkFold?.high;
  return {
    kind: 'sluice.progress@2',
    batch: item.batch,
    time: item.time,
    sealedAt: item.sealedAt,
    sealMs: item.sealMs ?? 0,
    completedAt,
    inputRecords: item.inputRecords,
    inputBytes: item.inputBytes,
    outputRecords: item.summary?.outputRecords ?? item.counted.outputRecords,
    deadLetters: item.summary?.deadLetters ?? item.counted.deadLetters,
    deadLettersByKind: deadLettersByKind(allReports),
    inputRate: item.inputRecords / intervalS,
    processingRate: processingMs > 0 ? item.inputRecords / (processingMs / 1000) : 0,
    schedulingDelayMs: item.sealedAt - item.time,
    processingMs,
    totalDelayMs: completedAt - item.time,
    ...(eventTimeLow === undefined ? {} : { eventTimeLow }),
    ...(typeof item.eventTimeHigh === 'number' ? { eventTimeHigh: item.eventTimeHigh } : {}),
    ...(lateness !== undefined && typeof high === 'number' ? { watermark: high - lateness } : {}),
    phases,
    state: stateProgress(ctx, reports),
    requests: Object.fromEntries(Object.entries(requests).sort(([a], [b]) => a.localeCompare(b))),
    readUnits: metered.reduce((sum, { usage }) => sum + usage.readUnits, 0),
    writeUnits: metered.reduce((sum, { usage }) => sum + usage.writeUnits, 0),
    functions: functionTimes(invoked),
    gbSeconds,
    costUsd: bill.total,
    costByStep: { ingest: price(ingest), seal: price(seal), tasks: price([...tasks, ...late]) },
  };
}

function functionTimes(
  metered: readonly {
    readonly kind: FunctionKind;
    readonly usage: TaskUsage;
    readonly invocations?: number;
  }[],
): Partial<Record<FunctionKind, FunctionTime>> {
  const times: Partial<Record<FunctionKind, FunctionTime>> = {};
  for (const { kind, usage, invocations = 1 } of metered) {
    const before = times[kind] ?? { invocations: 0, durationMs: 0 };
    times[kind] = {
      invocations: before.invocations + invocations,
      durationMs: before.durationMs + usage.durationMs,
    };
  }
  return times;
}

function deadLettersByKind(reports: readonly TaskReport[]): Partial<Record<DeadLetterKind, number>> {
  const counts: Partial<Record<DeadLetterKind, number>> = {};
  for (const report of reports) {
    for (const [kind, count] of Object.entries(report.deadLetterKinds ?? {}) as [DeadLetterKind, number][]) {
      counts[kind] = (counts[kind] ?? 0) + count;
    }
  }
  return counts;
}

/** The allowed lateness of the pipeline's event-time stage, or nothing if it has none. */
function latenessOf(plan: Plan): number | undefined {
  for (const phase of plan.phases) {
    const spec = phase.wide?.spec;
    if (spec?.kind === 'sluice.stage/eventTimeWindow@1') return spec.eventTime.latenessMs;
  }
  return undefined;
}

/** Each stateful stage's state, summed over the partitions whose tasks reported it. */
function stateProgress(
  ctx: Pick<RuntimeContext, 'plan'>,
  reports: readonly (readonly TaskReport[])[],
): StateProgress[] {
  return ctx.plan.phases.flatMap((phase, index) => {
    if (!phase.wide?.stateful) return [];
    const states = (reports[index] ?? []).flatMap((report) => (report.state ? [report.state] : []));
    const sum = (pick: (state: StateUsage) => number): number =>
      states.reduce((total, state) => total + pick(state), 0);
    return [
      {
        stage: phase.spec.function,
        partitions: states.length,
        keys: sum((s) => s.keys),
        chunks: sum((s) => s.chunks),
        bytes: sum((s) => s.bytes),
        chunksRead: sum((s) => s.chunksRead),
        bytesRead: sum((s) => s.bytesRead),
        chunksWritten: sum((s) => s.chunksWritten),
        bytesWritten: sum((s) => s.bytesWritten),
      },
    ];
  });
}

/**
 * What the metrics and the page chart of a progress record: every stateful stage's keys and bytes
 * together, and (event time) how far the watermark was behind the batch time.
 *
 * @example
 * const { stateKeys, watermarkLagMs } = progressTotals(progress);
 */
export function progressTotals(progress: BatchProgress): {
  readonly stateKeys: number;
  readonly stateBytes: number;
  readonly watermarkLagMs?: number;
} {
  return {
    stateKeys: progress.state.reduce((sum, s) => sum + s.keys, 0),
    stateBytes: progress.state.reduce((sum, s) => sum + s.bytes, 0),
    ...(progress.watermark === undefined ? {} : { watermarkLagMs: progress.time - progress.watermark }),
  };
}

/**
 * Builds a finished batch's progress and writes it to `progress/`. The reports are read with one
 * query per phase; a replay writes the record again from the reports that stand.
 *
 * @example
 * const progress = await recordProgress(ctx, done, now);
 */
export async function recordProgress(
  ctx: RuntimeContext,
  item: BatchItem,
  completedAt: number,
): Promise<BatchProgress> {
  const reports = await Promise.all(
    ctx.plan.phases.map((_, phase) => ctx.ledger.reports.list(item.batch, phase)),
  );
  const progress = batchProgress(ctx, item, completedAt, reports);
  await ctx.objects.put(progressKey(item.batch), Buffer.from(JSON.stringify(progress)), 'application/json');
  return progress;
}

/**
 * The schemas of progress records, built when one is read (not when a function loads): version 2,
 * and version 1 (written before seal times, dead-letter kinds, state and step costs were kept),
 * which is read as version 2 with those empty.
 */
function progressSchemas() {
  const count = z.number().check(z.gte(0));
  const common = {
    batch: z.number().check(z.int(), z.positive()),
    time: z.number(),
    sealedAt: z.number(),
    completedAt: z.number(),
    inputRecords: count,
    inputBytes: count,
    outputRecords: count,
    deadLetters: count,
    inputRate: count,
    processingRate: count,
    schedulingDelayMs: z.number(),
    processingMs: z.number(),
    totalDelayMs: z.number(),
    eventTimeHigh: z.optional(z.number()),
    phases: z.array(
      z.object({
        phase: count,
        function: z.string(),
        tasks: count,
        taskMs: z.object({ min: count, median: count, max: count }),
        recordsIn: count,
        recordsOut: count,
        bytesRead: count,
        bytesWritten: count,
        deadLetters: count,
      }),
    ),
    requests: z.record(z.string(), count),
    readUnits: count,
    writeUnits: count,
    gbSeconds: count,
    costUsd: count,
  };
  return {
    v1: z.object({ kind: z.literal('sluice.progress@1'), ...common }),
    v2: z.object({
      kind: z.literal('sluice.progress@2'),
      ...common,
      sealMs: count,
      deadLettersByKind: z.partialRecord(z.enum(DEAD_LETTER_KINDS), count),
      eventTimeLow: z.optional(z.number()),
      watermark: z.optional(z.number()),
      state: z.array(z.extend(stateUsageSchema, { stage: z.string(), partitions: count })),
      costByStep: z.object({ ingest: count, seal: count, tasks: count }),
      functions: z.partialRecord(
        z.enum(['ingest', 'coordinator', 'transform', 'reduce']),
        z.object({ invocations: count, durationMs: count }),
      ),
    }),
  };
}

/**
 * Parses a progress record as stored (either version), or throws `DataFormatError`.
 *
 * @example
 * const progress = parseProgress(JSON.parse(body), batchId(3));
 */
export function parseProgress(raw: unknown, batch: BatchId): BatchProgress {
  const schemas = progressSchemas();
  const v2 = schemas.v2.safeParse(raw);
  if (v2.success) return { ...v2.data, batch: batchId(v2.data.batch) };
  const v1 = schemas.v1.safeParse(raw);
  if (v1.success) {
    return {
      ...v1.data,
      kind: 'sluice.progress@2',
      batch: batchId(v1.data.batch),
      sealMs: 0,
      deadLettersByKind: {},
      state: [],
      costByStep: { ingest: 0, seal: 0, tasks: v1.data.costUsd },
      functions: {},
    };
  }
  throw new DataFormatError(
    `the progress record of batch ${batch} is not a sluice.progress@2 (or @1) record`,
    {
      batch,
    },
  );
}

/**
 * A quiet batch's progress (no input, nothing due: completed by its seal, with no record written),
 * from its ledger item alone.
 *
 * @example
 * const progress = quietProgress(ctx, item);
 */
export function quietProgress(ctx: Pick<RuntimeContext, 'plan'>, item: BatchItem): BatchProgress {
  return batchProgress(ctx, item, item.completedAt ?? item.sealedAt, []);
}

/**
 * A complete batch's progress: its record, or for a quiet batch (which has none) what its ledger
 * item says.
 *
 * @example
 * const progress = await progressOf(ctx, item);
 */
export async function progressOf(
  ctx: Pick<RuntimeContext, 'objects' | 'plan'>,
  item: BatchItem,
): Promise<BatchProgress | undefined> {
  if (item.quietUntil !== undefined) return quietProgress(ctx, item);
  return readProgress(ctx, item.batch);
}

/**
 * Reads a batch's progress record, or nothing if the batch has none (not finished, finished by
 * a version that wrote none, or quiet: see `progressOf`).
 *
 * @example
 * const progress = await readProgress(ctx, batchId(3));
 */
export async function readProgress(
  ctx: Pick<RuntimeContext, 'objects'>,
  batch: BatchId,
): Promise<BatchProgress | undefined> {
  const body = await ctx.objects.getIfExists(progressKey(batch));
  if (!body) return undefined;
  return parseProgress(JSON.parse(body.toString('utf8')) as unknown, batch);
}
