import type { Usage } from '../lib/cost/usage';
import type { Pipeline } from '../lib/dsl/pipeline';
import type { Source } from '../lib/dsl/source';
import type { BatchId } from '../lib/ids';
import type { Halt } from '../lib/runtime/failure';
import type { DeadLetter } from '../lib/runtime/datapath';
import type { CommandResult } from '../lib/runtime/operator';
import { LocalRuntime, type BatchResult, type LocalRunOptions } from './runtime';

/** Options of `testPipeline`: those of a local run, with the manual clock. */
export type TestPipelineOptions = Omit<LocalRunOptions, 'clock' | 'print' | 'startAfter'>;

/**
 * A pipeline under test: the real runtime (ingest, coordinator, transform and reduce executors) on
 * the embedded emulator, driven by a manual clock.
 */
export class TestPipeline<T, Out> {
  private readonly runtime: Promise<LocalRuntime<T, Out>>;
  private pending: Promise<unknown> = Promise.resolve();
  /** Every batch that has completed, in order. */
  readonly batches: BatchResult[] = [];
  /** What the pipeline's `print` sinks printed. */
  readonly printed: string[] = [];

  constructor(pipeline: Pipeline<T, Out>, options: TestPipelineOptions = {}) {
    this.runtime = LocalRuntime.start(pipeline, {
      ...options,
      clock: 'manual',
      print: (text) => this.printed.push(text),
    });
    // An unobserved start-up failure is reported by the first call that awaits it.
    this.runtime.catch(() => {});
  }

  /** Puts records into the stream; they go into the next batch `advance()` seals. Chainable. */
  push(records: readonly T[]): this {
    this.pending = this.pending.then(async () => (await this.runtime).push(records));
    return this;
  }

  /** Puts records into another source's stream (a join's other side). Chainable. */
  pushTo<U>(source: Source<U>, records: readonly U[]): this {
    this.pending = this.pending.then(async () => (await this.runtime).pushTo(source, records));
    return this;
  }

  /** Puts raw bytes into the stream (say, input that must fail to decode). Chainable. */
  pushRaw(records: readonly Uint8Array[]): this {
    this.pending = this.pending.then(async () => (await this.runtime).pushRaw(records));
    return this;
  }

  /**
   * Moves the clock one batch interval on and runs the batch that closes: its result (complete,
   * failed or skipped). Throws when no batch closed because a failed batch halted the pipeline.
   */
  async advance(): Promise<BatchResult<Out>> {
    const [result] = await this.advanceBy(1);
    if (result) return result;
    const runtime = await this.runtime;
    const paused = (await runtime.ctx.ledger.pipeline.get())?.paused;
    if (paused) {
      throw new Error(
        `no batch closed: the pipeline is paused (${paused.reason}); advanceBy() waits, resume() ends it`,
      );
    }
    const halt = await runtime.halted();
    if (halt) {
      throw new Error(
        `no batch closed: the pipeline is halted by failed batch ${halt.batch} (${halt.reason}); ` +
          'retryBatch() or skipBatch() it',
      );
    }
    throw new Error('no batch closed: the clock did not reach a batch boundary');
  }

  /** Why sealing stopped, if a failed batch halted the pipeline (`onBatchFailure: 'halt'`). */
  async halted(): Promise<Halt | undefined> {
    await this.pending;
    return (await this.runtime).halted();
  }

  /**
   * Pauses sealing, as `sluice pause` does: pushed records wait (ingest goes on) and `advance()`
   * closes no batch until `resume()`.
   */
  async pause(reason?: string): Promise<CommandResult> {
    await this.pending;
    return (await this.runtime).pause(reason);
  }

  /**
   * Resumes sealing, as `sluice resume` does: the next `advance()` seals every batch due since the
   * pause, the backlog spread over them within `maxRecordsPerBatch` and `maxBytesPerBatch`.
   */
  async resume(): Promise<CommandResult> {
    await this.pending;
    return (await this.runtime).resume();
  }

  /** Runs a failed batch again (after a fix), as an operator would; its result. */
  async retryBatch(batch: BatchId): Promise<BatchResult<Out>> {
    await this.pending;
    return (await (await this.runtime).retryBatch(batch)) as BatchResult<Out>;
  }

  /** Skips a failed batch, as an operator would: its input is dead-lettered and state moves on. */
  async skipBatch(batch: BatchId, why?: string): Promise<BatchResult<Out>> {
    await this.pending;
    return (await (await this.runtime).skipBatch(batch, why)) as BatchResult<Out>;
  }

  /** Moves the clock `intervals` batch intervals on; the results of the batches that closed. */
  async advanceBy(intervals: number): Promise<BatchResult<Out>[]> {
    await this.pending;
    const results = (await (await this.runtime).advance(intervals)) as BatchResult<Out>[];
    this.batches.push(...results);
    return results;
  }

  /** The dead letters of a batch, as written to the dead-letter prefix. */
  async deadLetters(batch: BatchId): Promise<DeadLetter[]> {
    return (await this.runtime).deadLetters(batch);
  }

  /**
   * What the run has asked of AWS so far: requests and DynamoDB request units by function kind and
   * operation, and invocations with their durations (price it with `sluice cost`'s model).
   */
  async usage(): Promise<Usage> {
    await this.pending;
    return (await this.runtime).usage.usage();
  }

  /** The runtime underneath, for assertions on the ledger, the bucket or the invoker. */
  async local(): Promise<LocalRuntime<T, Out>> {
    return this.runtime;
  }

  /** Stops the runtime and its emulator. */
  async close(): Promise<void> {
    await this.pending.catch(() => {});
    await (await this.runtime).stop();
  }
}

/**
 * Runs a pipeline in a test on the real runtime, with a manual clock: push records, advance one
 * batch interval, look at that batch's output.
 *
 * @example
 * import { testPipeline } from 'sluice/testing';
 * const t = testPipeline(wordcount);
 * const batch = await t.push(['to be or not to be']).advance();
 * expect(batch.records).toContainEqual(['be', 2]);
 * await t.close();
 */
export function testPipeline<T, Out>(
  pipeline: Pipeline<T, Out>,
  options: TestPipelineOptions = {},
): TestPipeline<T, Out> {
  return new TestPipeline(pipeline, options);
}

export type { BatchResult } from './runtime';
export type { Halt } from '../lib/runtime/failure';
export { replay, ReplayError } from './replay';
export type { ReplayOptions, ReplayReport, ReplayedBatch } from './replay';
export type { BatchOrTime } from './batch-range';
