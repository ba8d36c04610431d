/**
 * The watermark, in one place: how event times are observed, folded and read.
 *
 * - **Observed** per task: a transform task notes the highest event time of the records it sends
 *   into the event-time stage (`raiseHigh`), and reports it as `eventTimeHigh`.
 * - **Folded** per batch, then per pipeline: when the event-time phase of a batch starts, its tasks'
 *   highs become the batch's `eventTimeHigh` (`highOfTasks`); when batch n is sealed, the
 *   pipeline's `WatermarkFold` is extended over the batches after it that have their high, in order
 *   (`foldBatches`), and the fold's high is fixed in batch n's manifest as its `eventTimeHigh`.
 * - **Read** by the event-time stage: the watermark of batch n is its manifest's high minus the
 *   allowed lateness (`watermarkOf`). Records of windows that ended at or before it are late;
 *   windows that end at or before it are output for the last time.
 *
 * So batch n's watermark depends only on batches before it that had started their event-time
 * phase when it was sealed, is fixed when it is sealed, and never moves back.
 */

/** The highest event time seen (epoch ms), `null` before any. */
export type EventTimeHigh = number | null;

/** The highest event time of batches 1..through: the pipeline's watermark before lateness. */
export interface WatermarkFold {
  readonly high: EventTimeHigh;
  readonly through: number;
}

/**
 * A high raised by one more event time (or another high); an absent one changes nothing.
 *
 * @example
 * raiseHigh(null, 5); // 5
 * raiseHigh(7, 5); // 7
 */
export function raiseHigh(high: EventTimeHigh, seen: EventTimeHigh | undefined): EventTimeHigh {
  if (seen === null || seen === undefined) return high;
  return high === null || seen > high ? seen : high;
}

/**
 * A batch's high: the highest of its tasks' reported highs.
 *
 * @example
 * highOfTasks([{ eventTimeHigh: 3 }, {}, { eventTimeHigh: 9 }]); // 9
 */
export function highOfTasks(reports: Iterable<{ readonly eventTimeHigh?: number }>): EventTimeHigh {
  let high: EventTimeHigh = null;
  for (const report of reports) high = raiseHigh(high, report.eventTimeHigh);
  return high;
}

/** What the fold needs to know of a batch. */
export interface FoldableBatch {
  readonly batch: number;
  /** `skipping` and `skipped` batches add nothing: their records are dead letters, not input. */
  readonly status: string;
  /** Set once the batch's event-time phase has started. */
  readonly eventTimeHigh?: EventTimeHigh;
}

/**
 * The fold for sealing batch `sealing`: the previous fold, extended over the following batches, in
 * order, that know their high. It stops at the first batch still on its way (or at `sealing`), so
 * the fold only ever moves forward and what a batch is sealed with is fixed in its ledger item.
 *
 * @example
 * foldBatches({ high: 10, through: 1 }, [{ batch: 2, status: 'complete', eventTimeHigh: 12 }], 3);
 * // { high: 12, through: 2 }
 */
export function foldBatches(
  previous: WatermarkFold | undefined,
  following: readonly FoldableBatch[],
  sealing: number,
): WatermarkFold {
  let { high, through } = previous ?? { high: null, through: 0 };
  for (const item of following) {
    if (item.batch >= sealing || item.batch !== through + 1) break;
    const skipped = item.status === 'skipping' || item.status === 'skipped';
    if (!skipped && item.eventTimeHigh === undefined) break;
    if (!skipped) high = raiseHigh(high, item.eventTimeHigh);
    through = item.batch;
  }
  return { high, through };
}

/**
 * The watermark of a batch: its sealed high minus the allowed lateness; before any event time,
 * `-Infinity` (nothing is late, no window is final).
 *
 * @example
 * watermarkOf(60_000, 10_000); // 50000
 */
export function watermarkOf(high: EventTimeHigh | undefined, latenessMs: number): number {
  return high === null || high === undefined ? -Infinity : high - latenessMs;
}
