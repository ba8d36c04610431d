import * as z from 'zod/mini';
import type { BatchItem, TaskReport } from '../batch';
import { priceTasks } from '../cost/model';
import { US_EAST_1 } from '../cost/prices';
import { DEFAULT_MEMORY_MB } from '../deployment';
import { DataFormatError } from '../errors';
import { batchId, type BatchId } from '../ids';
import { progressKey } from '../storage/keys';
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
 * What one finished batch did and cost, as Spark's `StreamingQueryProgress` and Streaming tab
 * show it: written once per batch to `progress/` beside its output, read by `testPipeline`
 * results, `sluice local run --json` and the CloudWatch metrics.
 */
export interface BatchProgress {
  readonly kind: 'sluice.progress@1';
  readonly batch: BatchId;
  /** The batch time: the end of its interval. */
  readonly time: number;
  readonly sealedAt: number;
  readonly completedAt: number;
  readonly inputRecords: number;
  /** Bytes of the batch's input as written ahead to segments (records and their framing). */
  readonly inputBytes: number;
  readonly outputRecords: number;
  readonly deadLetters: number;
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
  /** The highest event time seen up to this batch, for event-time pipelines. */
  readonly eventTimeHigh?: number;
  readonly phases: readonly PhaseProgress[];
  /** The tasks' AWS requests by operation, up to their reports. */
  readonly requests: Readonly<Record<string, number>>;
  readonly readUnits: number;
  readonly writeUnits: number;
  /** Lambda GB-seconds of the tasks (at the default memory of their kind). */
  readonly gbSeconds: number;
  /** What the tasks cost at us-east-1 list prices, US dollars. */
  readonly costUsd: number;
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
  const metered = reports.flatMap((phaseReports, index) =>
    phaseReports.flatMap((report) =>
      report.usage
        ? [{ kind: index === 0 ? ('transform' as const) : ('reduce' as const), usage: report.usage }]
        : [],
    ),
  );
  const requests: Record<string, number> = {};
  for (const { usage } of metered) {
    for (const [operation, count] of Object.entries(usage.requests)) {
      requests[operation] = (requests[operation] ?? 0) + count;
    }
  }
  const bill = priceTasks(metered, US_EAST_1, DEFAULT_MEMORY_MB);
  const gbSeconds = bill.lines.find((line) => line.item === 'GB-seconds')?.quantity ?? 0;
  return {
    kind: 'sluice.progress@1',
    batch: item.batch,
    time: item.time,
    sealedAt: item.sealedAt,
    completedAt,
    inputRecords: item.inputRecords,
    inputBytes: item.inputBytes,
    outputRecords: item.summary?.outputRecords ?? item.counted.outputRecords,
    deadLetters: item.summary?.deadLetters ?? item.counted.deadLetters,
    inputRate: item.inputRecords / intervalS,
    processingRate: processingMs > 0 ? item.inputRecords / (processingMs / 1000) : 0,
    schedulingDelayMs: item.sealedAt - item.time,
    processingMs,
    totalDelayMs: completedAt - item.time,
    ...(typeof item.eventTimeHigh === 'number' ? { eventTimeHigh: item.eventTimeHigh } : {}),
    phases,
    requests: Object.fromEntries(Object.entries(requests).sort(([a], [b]) => a.localeCompare(b))),
    readUnits: metered.reduce((sum, { usage }) => sum + usage.readUnits, 0),
    writeUnits: metered.reduce((sum, { usage }) => sum + usage.writeUnits, 0),
    gbSeconds,
    costUsd: bill.total,
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

/** The schema of a progress record, built when one is read (not when a function loads). */
function progressSchema() {
  const count = z.number().check(z.gte(0));
  return z.object({
    kind: z.literal('sluice.progress@1'),
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
  });
}

/**
 * Reads a batch's progress record, or nothing if the batch has none (not finished, or finished by
 * a version that wrote none).
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
  const parsed = progressSchema().safeParse(JSON.parse(body.toString('utf8')) as unknown);
  if (!parsed.success) {
    throw new DataFormatError(`the progress record of batch ${batch} is not a sluice.progress@1 record`, {
      batch,
    });
  }
  return { ...parsed.data, batch: batchId(parsed.data.batch) };
}
