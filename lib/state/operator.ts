import { watermarkOf, type EventTimeHigh } from '../watermark';
/**
 * The interface between the runtime and a stateful keyed operator: what it is told about the batch,
 * how it sees one partition's state, and how it hands over a key that failed. Operators
 * (`operators.ts`, `event-time.ts`) implement it; the DSL wires them into stages.
 */

/** What a stateful operator is told about the batch it applies. */
export interface StatefulBatch {
  readonly batch: number;
  /** Batch time, epoch ms. */
  readonly time: number;
  readonly intervalMs: number;
  /**
   * The high of the watermark fold the batch was sealed with (fixed in its manifest); the watermark
   * is this minus the allowed lateness (`watermarkOf`). `null` (or unset) before any.
   */
  readonly watermarkHigh?: EventTimeHigh;
}

/** The state of one partition, as a stateful operator sees it. */
export interface KeyedState {
  get(key: unknown): { readonly key: unknown; value: unknown } | undefined;
  set(key: unknown, value: unknown): void;
  delete(key: unknown): void;
  values(): IterableIterator<{ readonly key: unknown; value: unknown }>;
}

/**
 * Takes a key whose state function threw (or whose new state could not be kept): the key's state
 * as it was before the batch and the batch's values for it go to the dead-letter prefix together,
 * as `state`, and the key starts over with no state. Nothing is lost, the dead letter is written
 * once, and a state that makes the function throw cannot fail every later batch.
 */
export type KeyFailure = (
  key: unknown,
  error: unknown,
  detail: { readonly values?: unknown; readonly state?: unknown },
) => void;

/**
 * How a stateful keyed stage applies one batch to one partition's state: `input` holds the batch's
 * merged combiners per key; `emit` gives the stage's output records. Each key is applied on its
 * own: a user function that throws for one key hands it to `fail` (none of its output for the
 * batch is emitted, and its state is removed after it went to the dead letter) and the others go on.
 */
export interface StatefulOperator {
  readonly apply: (
    input: Iterable<{ readonly key: unknown; readonly combiner: unknown }>,
    state: KeyedState,
    batch: StatefulBatch,
    emit: (record: unknown) => void,
    fail: KeyFailure,
  ) => void;
  /** State before the first batch (all partitions' keys; the runtime keeps each partition's own). */
  readonly initial?: () => Iterable<readonly [unknown, unknown]>;
  /**
   * `'keys'` when a batch needs only the state of its own keys and of keys the time index says are
   * due (`dueAt`): the runtime then loads and stores just those keys' chunks (the keyed layout), so
   * a batch costs what it touches (`mapWithState`, event-time windows). Otherwise every key's
   * state is loaded every batch (windows over processing time, `updateStateByKey`, snapshots).
   */
  readonly reads?: 'keys';
  /**
   * For a `'keys'` operator that acts on keys no record touched (a timeout, a window's end): the
   * time (epoch ms, on the operator's `clock`) after which the key with this stored value must be
   * seen again, or undefined. The key is loaded in the first batch whose clock is past it, and
   * `apply` finds it in `state.values()`.
   */
  readonly dueAt?: (value: unknown, key: unknown) => number | undefined;
  /**
   * The clock due times are compared with (epoch ms, never negative): a key is due in the first
   * batch whose clock is past its due time. The batch time when not given (`mapWithState`'s
   * timeouts); for event-time windows, the watermark, due when it passes their end.
   */
  readonly clock?: DueClock;
  /**
   * For an operator that reads every key: the batch time (epoch ms) up to which batches without
   * input leave its state and output as this batch left them, even while it holds state (a window
   * between its window batches). Those batches are quiet: no partition runs.
   */
  readonly idleUntil?: (batch: StatefulBatch) => number;
}

/** A clock other than the batch time: the watermark, the sealed high less the allowed lateness. */
export interface DueClock {
  readonly kind: 'watermark';
  readonly latenessMs: number;
}

/**
 * The time an operator's due times are compared with at a batch: the batch time, or for an
 * operator on the watermark's clock the watermark (never below 0: the time index's times are not
 * negative, so windows ending before 1970 wait for a watermark past it).
 *
 * @example
 * const now = dueClock(operator, { batch: 7, time: manifest.time, intervalMs: 10_000 });
 */
export function dueClock(operator: StatefulOperator, batch: StatefulBatch): number {
  const { clock } = operator;
  // The watermark is the one clock besides the batch time (`DueClock`).
  return clock ? Math.max(0, watermarkOf(batch.watermarkHigh, clock.latenessMs)) : batch.time;
}

/**
 * The highest sealed event-time high at which a watermark-clock operator's first due time `due`
 * is still not due: a key is due once the clock is past its due time, and the clock is the high
 * less the lateness.
 *
 * @example
 * highBeforeDue({ kind: 'watermark', latenessMs: 30_000 }, 90_000); // 120000
 */
export function highBeforeDue(clock: DueClock, due: number): number {
  return due + clock.latenessMs;
}
