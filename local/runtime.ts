import { setTimeout as sleep } from 'node:timers/promises';
import { awsTargetFromEnv, createAwsClients, destroyAwsClients, type AwsClients } from '../lib/aws';
import { UsageMeter } from '../lib/cost/usage';
import {
  deployedFunction,
  describeDeployment,
  SCHEDULE_RATE_MS,
  type DeployedResources,
  type Deployment,
} from '../lib/deployment';
import { withSettings, type AnyPipeline, type Pipeline, type PipelineSettings } from '../lib/dsl/pipeline';
import type { Source } from '../lib/dsl/source';
import { batchId, type BatchId } from '../lib/ids';
import { planPipeline } from '../lib/plan';
import type { RuntimeContext } from '../lib/runtime/context';
import type { Halt } from '../lib/runtime/failure';
import type { CommandEvent, CommandResult, OperatorCommand } from '../lib/runtime/operator';
import type { PipelineHandlers } from '../lib/runtime/handlers';
import type { DeadLetter } from '../lib/runtime/datapath';
import { AccessGuard } from './access';
import { readBatchResult, type BatchResult } from './batch-result';
import { LocalClock, type ClockKind } from './clock';
import { readDeadLetters } from './dead-letters';
import { startEmulator, type Emulator } from './emulator';
import { eventSourceMappings } from './event-source-mappings';
import { findFailedBatches, type FailedBatches } from './failed-batches';
import { addFaultMiddleware, FaultInjector, type FaultOptions } from './faults';
import { deployFunctions, handlersOf } from './functions';
import { LocalInvoker } from './invoker';
import type { LocalPoller } from './poller';
import { StreamProducer } from './producer';
import { provisionResources, type LocalResources } from './resources';
import { runName, runNames, type RunNames } from './run-names';
import { LocalScheduler } from './scheduler';

export { runNameProblem } from './run-names';
export type { BatchResult, LocalResources };

/** How often `finish()` looks whether a batch sealed after the input ends. */
const FINISH_POLL_MS = 100;

/**
 * The most recent batches `settle()` reads to find open ones: one bounded query, not a long run's
 * whole ledger.
 */
const SETTLE_LOOKBACK_BATCHES = 100;

/**
 * Options of a local run.
 *
 * @example
 * const options: LocalRunOptions = { shards: 4, clock: 'system', settings: { batchInterval: '2s' } };
 * const run = await LocalRuntime.start(wordcount, options);
 */
export interface LocalRunOptions {
  /** Shards of each stream the run creates. @default 2 */
  readonly shards?: number;
  /** Run settings that override the pipeline's (batch interval, partitions, tasks). */
  readonly settings?: PipelineSettings;
  readonly faults?: FaultOptions;
  /** Task invocations running at once. @default 8 */
  readonly concurrency?: number;
  /** Retries of a failed asynchronous invocation, as Lambda's `MaximumRetryAttempts`. @default 2 */
  readonly retries?: number;
  /**
   * `manual`: time moves only with `advance()` (tests, `--lines-per-batch`); `system`: the wall
   * clock, with a scheduler and a poller running in the background. @default 'manual'
   */
  readonly clock?: ClockKind;
  /** An endpoint to use instead of an embedded emulator. @default process.env.AWS_ENDPOINT_URL */
  readonly endpoint?: string;
  /** Where the pipeline's `print` sink writes. @default ignored */
  readonly print?: (text: string) => void;
  /**
   * A named run: its resources are named after it, and a run started again with the same name on
   * the same endpoint continues from its ledger (same bucket, table and streams) instead of
   * creating new ones. Needs a long-running endpoint (`sluice local serve`, LocalStack).
   * @default - a new run with new resources
   */
  readonly run?: string;
  /**
   * With `run`: read that run as it is, creating nothing, and refuse if it does not exist (the
   * streaming page of a run another process drives).
   * @default false
   */
  readonly existingOnly?: boolean;
  /**
   * Existing resources to run on instead of a run's own: a deployed stack's bucket, ledger table and
   * streams (`openStack(...).resources`), on an endpoint whose CloudFormation created them but cannot
   * run their functions (an emulator without Lambda). Creates nothing; the functions run here.
   * @default - the run's own resources
   */
  readonly resources?: Pick<DeployedResources, 'bucket' | 'table' | 'streams'>;
  /**
   * A new run whose ledger starts after this batch, so that the first batch sealed or started in
   * it is the next one (a replay of a pipeline without state from a later batch). A run that
   * continues a ledger keeps its own.
   * @default 0
   */
  readonly startAfter?: number;
  /**
   * Memory of the transform and reduce functions, MiB, as the construct's `taskMemorySize`: each
   * task's memory budget follows from it, as on Lambda.
   * @default DEFAULT_MEMORY_MB (1024)
   */
  readonly taskMemorySize?: number;
  /**
   * As the construct's `coordinatorWaits`: `false` deploys a coordinator that does not wait for
   * batch boundaries, and a system-clock run then ticks once a minute, as the deployed schedule
   * does (records arriving after a boundary wake a coordinator through ingest).
   * @default true
   */
  readonly coordinatorWaits?: boolean;
}

/** What `LocalRuntime.start` has built by the time the runtime itself is made. */
interface RuntimeParts<T, Out> {
  readonly pipeline: Pipeline<T, Out>;
  readonly resources: LocalResources;
  readonly clients: AwsClients;
  readonly emulator: Emulator | undefined;
  readonly deployment: Deployment;
  readonly functions: ReadonlyMap<string, PipelineHandlers>;
  readonly invoker: LocalInvoker;
  readonly faults: FaultInjector;
  readonly usage: UsageMeter;
  readonly guard: AccessGuard;
  readonly clock: LocalClock;
  /** The coordinator's deployed name. */
  readonly coordinatorName: string;
}

/**
 * Runs a pipeline on the embedded emulator (or on `AWS_ENDPOINT_URL`): creates its bucket, ledger
 * table and stream, and stands in for Lambda (the invoker), the event-source mapping (the poller)
 * and EventBridge (a scheduler, or a manual clock). The executors are the ones Lambda runs.
 *
 * @example
 * const run = await LocalRuntime.start(wordcount, { shards: 4 });
 * await run.push(['a b', 'b c']);
 * const [batch] = await run.advance();
 * await run.stop();
 */
export class LocalRuntime<T = unknown, Out = unknown> {
  readonly pipeline: Pipeline<T, Out>;
  readonly resources: LocalResources;
  /** The deployment description the functions run with (what the CDK construct deploys). */
  readonly deployment: Deployment;
  /** The coordinator's context: the ledger, bucket and plan, for the harness and tests. */
  readonly ctx: RuntimeContext;
  readonly invoker: LocalInvoker;
  readonly faults: FaultInjector;
  /**
   * What the run asked of AWS: requests and DynamoDB request units by operation, invocations and
   * their durations by function kind (the harness's own reads are not metered).
   */
  readonly usage: UsageMeter;
  /** Refuses what the functions' roles would refuse, and keeps what it refused. */
  readonly guard: AccessGuard;
  /** The run's SDK clients, which the runtime's functions share (for tests that watch requests). */
  readonly clients: AwsClients;
  private readonly emulator: Emulator | undefined;
  private readonly functions: ReadonlyMap<string, PipelineHandlers>;
  private readonly clock: LocalClock;
  private readonly producer: StreamProducer;
  private readonly pollers: readonly LocalPoller[];
  private readonly scheduler: LocalScheduler;
  /** The coordinator's deployed name: what the scheduler (and `settle`) invoke. */
  private readonly coordinatorName: string;

  private constructor(parts: RuntimeParts<T, Out>) {
    this.pipeline = parts.pipeline;
    this.resources = parts.resources;
    this.deployment = parts.deployment;
    this.invoker = parts.invoker;
    this.faults = parts.faults;
    this.usage = parts.usage;
    this.guard = parts.guard;
    this.clients = parts.clients;
    this.emulator = parts.emulator;
    this.functions = parts.functions;
    this.clock = parts.clock;
    this.ctx = handlersOf(parts.functions, 'coordinator').ctx;
    this.coordinatorName = parts.coordinatorName;
    this.producer = new StreamProducer(parts.clients.kinesis, parts.resources.streams);
    this.pollers = eventSourceMappings({
      kinesis: parts.clients.kinesis,
      streams: parts.resources.streams,
      ingest: handlersOf(parts.functions, 'ingest'),
      ingestSpec: deployedFunction(parts.deployment, 'ingest'),
      guard: parts.guard,
      faults: parts.faults,
      ledger: this.ctx.ledger,
      meter: parts.usage,
    });
    // As the deployed coordinator is configured: one that waits passes at every boundary (the
    // scheduler stands in for its loop); one that does not is started by the schedule's minute
    // tick, and by ingest.
    this.scheduler =
      this.ctx.config.coordinatorWaits !== false
        ? new LocalScheduler(this.pollers, () => this.tick(), parts.pipeline.batchIntervalMs)
        : new LocalScheduler(this.pollers, () => this.tick(), SCHEDULE_RATE_MS, true);
  }

  /** Starts the emulator (unless an endpoint is given), creates the resources, and wires the runtime. */
  static async start<T, Out>(
    pipeline: Pipeline<T, Out>,
    options: LocalRunOptions = {},
  ): Promise<LocalRuntime<T, Out>> {
    const configured = options.settings ? withSettings(pipeline, options.settings) : pipeline;
    const anyPipeline = configured as AnyPipeline;
    const external = options.endpoint ?? process.env.AWS_ENDPOINT_URL;
    const run = runName(options.run, external);
    const { endpoint, emulator } = await connect(external);
    const clients = createAwsClients({
      ...awsTargetFromEnv({ ...process.env, AWS_ENDPOINT_URL: endpoint }),
      endpoint,
    });
    const faults = new FaultInjector(options.faults);
    const deployment = describeDeployment(anyPipeline, planPipeline(anyPipeline));
    const own = runNames(deployment, run);
    const names = options.resources
      ? {
          ...own,
          bucket: options.resources.bucket,
          table: options.resources.table,
          streams: options.resources.streams,
        }
      : own;
    const guard = new AccessGuard(names.bucket, names.table);
    // Order matters: the guard refuses before a fault is injected or a request counted.
    guard.attach(clients);
    addFaultMiddleware(clients.s3, faults);
    addFaultMiddleware(clients.dynamo, faults);
    const usage = new UsageMeter();
    usage.attach(clients.s3, 's3');
    usage.attach(clients.dynamo, 'dynamodb');
    usage.attach(clients.kinesis, 'kinesis');

    let resumed: boolean;
    try {
      resumed = await provisionResources(clients, names, {
        endpoint,
        shards: options.shards ?? 2,
        resume: options.run !== undefined || options.resources !== undefined,
        existingOnly: options.existingOnly === true || options.resources !== undefined,
      });
    } catch (error) {
      destroyAwsClients(clients);
      await emulator?.stop();
      throw error;
    }

    const invoker = new LocalInvoker(faults, {
      concurrency: options.concurrency ?? 8,
      meter: usage,
      ...(options.retries === undefined ? {} : { retries: options.retries }),
    });
    const clock = new LocalClock(options.clock ?? 'manual', configured.batchIntervalMs);
    const functions = deployFunctions({
      pipeline: anyPipeline,
      deployment,
      names,
      clients,
      invoker,
      guard,
      clock,
      print: options.print ?? (() => {}),
      meter: usage,
      ...(options.taskMemorySize === undefined ? {} : { taskMemorySize: options.taskMemorySize }),
      ...(options.coordinatorWaits === false ? { coordinatorWaits: false } : {}),
    });
    const ledger = handlersOf(functions, 'coordinator').ctx.ledger;
    const state = await ledger.pipeline.get();
    clock.start(state);
    const runtime = new LocalRuntime<T, Out>({
      pipeline: configured,
      resources: localResources(names, configured.source.spec.stream, endpoint, emulator, resumed),
      clients,
      emulator,
      deployment,
      functions,
      invoker,
      faults,
      usage,
      guard,
      clock,
      coordinatorName: names.functionName('coordinator'),
    });
    // The stream's zero time is fixed when the run starts, as a deployment's first coordinator
    // pass fixes it: batch 1 then ends one interval after the start. A continued run keeps its own.
    if (!state) await ledger.pipeline.init(clock.intervalStart(), options.startAfter ?? 0);
    return runtime;
  }

  /**
   * The context one function runs with (its own configuration, invoker and stores), by function id:
   * for tests that reach into a function, such as making its state store fail.
   */
  context(fn: string): RuntimeContext {
    return handlersOf(this.functions, fn).ctx;
  }

  /** The current time of the run's clock. */
  now(): number {
    return this.clock.now();
  }

  /** Puts records into the pipeline source's stream, encoded by the source's decoder. */
  async push(records: readonly T[]): Promise<void> {
    const encode = this.pipeline.source.decoder.encode;
    await this.pushRaw(records.map((r) => encode(r)));
  }

  /** Puts records into another source's stream (a join's other side), encoded by its decoder. */
  async pushTo<U>(source: Source<U>, records: readonly U[]): Promise<void> {
    await this.pushRaw(
      records.map((r) => source.decoder.encode(r)),
      source.spec.stream,
    );
  }

  /** Puts raw record bytes into a source's stream (for input that should fail to decode, say). */
  async pushRaw(records: readonly Uint8Array[], source = this.pipeline.source.spec.stream): Promise<void> {
    await this.producer.put(records, source);
  }

  /** Delivers everything in the streams to ingest (the event-source mappings catching up). */
  async ingestPending(): Promise<number> {
    let total = 0;
    for (const poller of this.pollers) total += await poller.drain();
    return total;
  }

  /**
   * Manual clock: ingests what was pushed, moves time on by one batch interval, seals the batch
   * that ends there and runs it to completion. Returns the batches that ended (complete, failed or
   * skipped); none when the pipeline is halted by a failed batch (see `halted()`).
   */
  async advance(intervals = 1): Promise<BatchResult[]> {
    if (this.clock.kind !== 'manual') throw new Error('advance() needs the manual clock');
    await this.ingestPending();
    const before = (await this.ctx.ledger.pipeline.get())?.lastSealed ?? 0;
    this.clock.advance(intervals);
    const started = Date.now();
    await this.tick();
    await this.settle();
    // The manual clock stands still while batches run; their processing time is wall time.
    const elapsed = Date.now() - started;
    const after = (await this.ctx.ledger.pipeline.get())?.lastSealed ?? 0;
    const results: BatchResult[] = [];
    for (let n = before + 1; n <= after; n++) {
      results.push({ ...(await this.result(batchId(n))), processingMs: elapsed });
    }
    return results;
  }

  /**
   * Manual clock: moves time on by `intervals` batch intervals and nothing else, as time passes
   * between two ticks of the schedule: what is due then waits for a coordinator (a tick,
   * `advance()`, or ingest waking one).
   */
  passTime(intervals = 1): void {
    if (this.clock.kind !== 'manual') throw new Error('passTime() needs the manual clock');
    this.clock.advance(intervals);
  }

  /** One coordinator invocation, as the schedule sends it; resolves when it has finished. */
  private tick(stuckBefore?: number): Promise<void> {
    return this.invoker.submit(this.coordinatorName, {
      ...this.deployment.tick,
      ...(stuckBefore === undefined ? {} : { stuckBefore }),
    });
  }

  /**
   * Runs what is due to its end: waits until no invocation is queued or running, then has the
   * coordinator seal what is due (a pass that gave up is re-driven as the next tick would), skip
   * what failed under `onBatchFailure: 'skip'`, and re-drive open batches at once (what its sweep
   * does after `sweepAfterMs`), until every batch is complete, failed or skipped. A halted pipeline
   * is settled once what is behind its failed batch has had one more try; a paused one once the
   * batches sealed before the pause are done.
   */
  async settle(maxRounds = 30): Promise<void> {
    const interval = this.pipeline.batchIntervalMs;
    const dueAt = this.now();
    let haltedRounds = 0;
    for (let round = 0; round < maxRounds; round++) {
      await this.invoker.idle();
      const state = await this.ctx.ledger.pipeline.get();
      if (!state) return;
      const { halt, unresolved } = await this.failedBatches();
      // A failed batch that does not halt is skipped by the next coordinator pass.
      const skipping = !halt && unresolved > 0;
      const due = Math.floor((dueAt - state.zeroTime) / interval);
      // Paused, nothing is sealed: what is due waits for the resume.
      const behind = !halt && !state.paused && state.lastSealed < due;
      const from = Math.max(1, state.lastSealed - (SETTLE_LOOKBACK_BATCHES - 1));
      const open = (await this.ctx.ledger.batches.from(from)).filter(
        (b) => b.status === 'sealed' || b.status === 'skipping',
      );
      if (open.length === 0 && !behind && !skipping) return;
      if (halt && open.every((b) => b.batch > halt.batch) && haltedRounds++ > 0) return;
      // Every open batch counts as stuck, so the pass sweeps it now rather than after sweepAfterMs.
      await this.tick(Number.MAX_SAFE_INTEGER);
    }
    throw new Error(
      `batches still open after ${maxRounds} coordinator passes: the invoker's failed list says why`,
    );
  }

  /**
   * Why sealing has stopped, if it has: the oldest failed batch under `onBatchFailure: 'halt'` (or
   * one that failed while being skipped).
   */
  async halted(): Promise<Halt | undefined> {
    return (await this.failedBatches()).halt;
  }

  /** The failed batches nobody has retried or skipped yet, and the oldest that halts sealing. */
  private failedBatches(): Promise<FailedBatches> {
    return findFailedBatches(this.ctx, this.pipeline);
  }

  /**
   * Sends an operator's command to the coordinator function, as `sluice pause` or `sluice batches
   * retry` does on AWS (a synchronous invocation of the same handler); what it did.
   */
  async command(command: OperatorCommand): Promise<CommandResult> {
    const event: CommandEvent = { kind: 'sluice.command@1', pipeline: this.pipeline.name, command };
    const outcome = await this.usage.invocation('coordinator', () =>
      handlersOf(this.functions, 'coordinator').coordinator(event, () => 0),
    );
    if (outcome.kind !== 'sluice.command-result@1')
      throw new Error('the coordinator did not answer a command');
    return outcome;
  }

  /** Pauses sealing (`sluice pause`): ingest goes on, batches already sealed finish. */
  async pause(reason = 'paused by the operator'): Promise<CommandResult> {
    return this.command({ kind: 'pause', reason });
  }

  /** Resumes sealing (`sluice resume`): the backlog goes into batches within the pipeline's bounds. */
  async resume(): Promise<CommandResult> {
    return this.command({ kind: 'resume' });
  }

  /** Runs a failed batch again (as `sluice batches retry` does), then settles. */
  async retryBatch(batch: BatchId): Promise<BatchResult> {
    await this.command({ kind: 'retry', batch });
    await this.settle();
    return this.result(batch);
  }

  /** Skips a failed batch (as `sluice batches skip` does), then settles. */
  async skipBatch(batch: BatchId, why = 'skipped by the operator'): Promise<BatchResult> {
    await this.command({ kind: 'skip', batch, reason: why });
    await this.settle();
    return this.result(batch);
  }

  /** A batch's totals and output. */
  async result(batch: BatchId): Promise<BatchResult> {
    return readBatchResult(this.ctx, batch);
  }

  /** The dead letters of a batch, read from the dead-letter prefix (a skipped batch's first). */
  async deadLetters(batch: BatchId): Promise<DeadLetter[]> {
    return readDeadLetters(this.ctx, batch);
  }

  /**
   * System clock: runs the scheduler (a coordinator pass at each batch boundary, one at a time, as
   * a pass may take longer than an interval on a slow endpoint) and the poller in the background
   * until `stopBackground()` or `stop()`.
   */
  startBackground(): void {
    if (this.clock.kind === 'system') this.scheduler.start();
  }

  /**
   * System clock: runs what was pushed to its end, as `sluice local run` does when its input ends.
   * Everything in the streams is ingested; once a batch sealed after that holds it (or sealing has
   * halted), the scheduler and poller stop (a tick every interval on a slow endpoint would never let
   * the invoker fall idle) and the run settles. Returns why sealing stopped, if it did.
   */
  async finish(): Promise<Halt | undefined> {
    if (this.clock.kind !== 'system') throw new Error('finish() needs the system clock');
    this.startBackground();
    await this.ingestPending();
    const ingestedBy = Date.now();
    const interval = this.pipeline.batchIntervalMs;
    let halt: Halt | undefined;
    for (;;) {
      const state = await this.ctx.ledger.pipeline.get();
      if (state && state.zeroTime + state.lastSealed * interval > ingestedBy) break;
      halt = await this.halted();
      if (halt) break;
      await sleep(FINISH_POLL_MS);
    }
    await this.stopBackground();
    await this.settle();
    return halt;
  }

  /** Stops the background scheduler and poller and waits for their last pass. */
  async stopBackground(): Promise<void> {
    await this.scheduler.stop();
  }

  /** Stops background loops, waits for running invocations, and stops the emulator it started. */
  async stop(): Promise<void> {
    await this.stopBackground();
    await this.invoker.idle();
    destroyAwsClients(this.clients);
    await this.emulator?.stop();
  }
}

/** The endpoint a run uses: the one given, or that of an emulator it starts (and stops at the end). */
async function connect(external: string | undefined): Promise<{ endpoint: string; emulator?: Emulator }> {
  if (external) return { endpoint: external };
  const emulator = await startEmulator();
  return { endpoint: emulator.endpoint, emulator };
}

/** What the run reports of its resources, once they are provisioned. */
function localResources(
  names: RunNames,
  source: string,
  endpoint: string,
  emulator: Emulator | undefined,
  resumed: boolean,
): LocalResources {
  const stream = names.streams[source];
  // Never missing (the deployment reads the pipeline's own source first): the check narrows the type.
  if (stream === undefined) throw new Error(`the run has no stream for source '${source}'`);
  return {
    endpoint,
    bucket: names.bucket,
    table: names.table,
    stream,
    streams: names.streams,
    embedded: emulator !== undefined,
    functions: names.functions,
    resumed,
  };
}
