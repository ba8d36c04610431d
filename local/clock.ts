import type { Clock } from '../lib/runtime/context';
import type { PipelineItem } from '../lib/batch';

/**
 * Which time a local run keeps: `manual` moves only when the run is told to advance (tests,
 * `--lines-per-batch`), `system` is the wall clock.
 *
 * @example
 * const kind: ClockKind = flags.linesPerBatch === undefined ? 'system' : 'manual';
 */
export type ClockKind = 'manual' | 'system';

/**
 * The time every function of a local run reads, as `Date.now()` on Lambda. A manual clock stands
 * still until it is advanced by whole batch intervals, so a test decides which batch each record
 * falls into; it has no time until `start` places it against the ledger.
 *
 * @example
 * const clock = new LocalClock('manual', 1_000);
 * clock.start(await ledger.pipeline.get());
 * clock.advance(1);
 * clock.now(); // one interval later
 */
export class LocalClock implements Clock {
  private manualTime: number | undefined;

  constructor(
    readonly kind: ClockKind,
    readonly intervalMs: number,
  ) {}

  /** Epoch milliseconds: the wall clock, or the manual clock's time. */
  now(): number {
    if (this.kind === 'system') return Date.now();
    // No function runs before the runtime has started the clock; one that did would seal at 0.
    if (this.manualTime === undefined) throw new Error('the manual clock has not been started');
    return this.manualTime;
  }

  /**
   * Places the manual clock: a run that continues a ledger at the end of its last sealed batch, so
   * its next `advance` seals the batch after it; a new run at the start of the current interval.
   */
  start(state: PipelineItem | undefined): void {
    this.manualTime = state
      ? state.zeroTime + state.lastSealed * this.intervalMs
      : this.intervalStartOf(Date.now());
  }

  /** Moves the manual clock on by whole batch intervals. */
  advance(intervals: number): void {
    if (this.kind !== 'manual') throw new Error('only a manual clock can be advanced');
    this.manualTime = this.now() + intervals * this.intervalMs;
  }

  /**
   * The start of the batch interval the clock is in: a new stream's zero time, so that batch 1
   * ends one interval after the run starts, as after a deployment's first coordinator pass.
   */
  intervalStart(): number {
    return this.intervalStartOf(this.now());
  }

  private intervalStartOf(time: number): number {
    return Math.floor(time / this.intervalMs) * this.intervalMs;
  }
}
