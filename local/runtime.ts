import { CreateBucketCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import { CreateTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  PutRecordsCommand,
} from '@aws-sdk/client-kinesis';
import { randomBytes } from 'node:crypto';
import { awsTargetFromEnv, createAwsClients, destroyAwsClients, type AwsClients } from '../lib/aws';
import {
  deployedFunction,
  describeDeployment,
  functionEnvironment,
  type Deployment,
} from '../lib/deployment';
import { withSettings, type Pipeline, type PipelineSettings } from '../lib/dsl/pipeline';
import { ConfigError, InvalidInputError } from '../lib/errors';
import { batchId, shardId, type BatchId } from '../lib/ids';
import { LIMITS } from '../lib/limits';
import { outputPrefix, planPipeline } from '../lib/plan';
import type { Source } from '../lib/dsl/source';
import type { RuntimeContext } from '../lib/runtime/context';
import { haltsSealing, retryBatch, skipBatch, type Halt } from '../lib/runtime/failure';
import { createHandlers, type PipelineHandlers } from '../lib/runtime/handlers';
import { fromJsonLines, readBatchOutput, type PartitionOutput } from '../lib/runtime/output';
import type { DeadLetter } from '../lib/runtime/tasks';
import { skippedBatchKey } from '../lib/storage/keys';
import type { BatchItem } from '../lib/storage/ledger';
import { AccessGuard } from './access';
import { startEmulator, type Emulator } from './emulator';
import { addFaultMiddleware, FaultInjector, type FaultOptions } from './faults';
import { RequestCounter } from './requests';
import { LocalInvoker, type LocalFunction } from './invoker';
import { LocalPoller } from './poller';

/** Options of a local run. */
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
  readonly clock?: 'manual' | 'system';
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
}

/** The resources a local run created. */
export interface LocalResources {
  readonly endpoint: string;
  readonly bucket: string;
  readonly table: string;
  /** The stream of the pipeline's source. */
  readonly stream: string;
  /** Every source's stream: source stream name to the stream the run created for it. */
  readonly streams: Readonly<Record<string, string>>;
  /** True when the run started its own emulator (and stops it at the end). */
  readonly embedded: boolean;
  /** The deployed name of every function, by function id. */
  readonly functions: Readonly<Record<string, string>>;
  /** True when a named run found its resources and continued from them. */
  readonly resumed: boolean;
}

/** What a finished batch gave: its totals and its output records, by partition and in order. */
export interface BatchResult<Out = unknown> {
  readonly batch: BatchId;
  readonly time: number;
  readonly status: BatchItem['status'];
  readonly inputRecords: number;
  readonly outputRecords: number;
  readonly deadLetters: number;
  /** From sealing to completion, ms (Spark's processing time plus task start-up). */
  readonly processingMs: number;
  /** From the batch time to sealing, ms (Spark's scheduling delay). */
  readonly schedulingDelayMs: number;
  readonly outputs: readonly PartitionOutput[];
  /** All output records: partition 0's first, in the order they were written. */
  readonly records: readonly Out[];
  readonly failure?: string;
}

/**
 * Why a run name cannot be used (it becomes part of bucket, table and stream names), or `undefined`.
 *
 * @example
 * runNameProblem('Nightly'); // "must be 1-20 lower-case letters, digits and '-'"
 */
export function runNameProblem(name: string): string | undefined {
  return /^[a-z0-9][a-z0-9-]{0,19}$/.test(name)
    ? undefined
    : "must be 1-20 lower-case letters, digits and '-'";
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
  private time: number;
  private readonly pollers: LocalPoller[];
  private background: { stop: () => Promise<void> } | undefined;
  private pushed = 0;
  /** The coordinator's deployed name: what the scheduler (and `settle`) invoke. */
  private readonly coordinatorName: string;

  private constructor(
    readonly pipeline: Pipeline<T, Out>,
    readonly resources: LocalResources,
    private readonly clients: AwsClients,
    private readonly emulator: Emulator | undefined,
    /** The deployment description the functions run with (what the CDK construct deploys). */
    readonly deployment: Deployment,
    /** The coordinator's context: the ledger, bucket and plan, for the harness and tests. */
    readonly ctx: RuntimeContext,
    readonly invoker: LocalInvoker,
    readonly faults: FaultInjector,
    /** AWS requests made by the runtime (not by the harness), by command name. */
    readonly requests: RequestCounter,
    /** Refuses what the functions' roles would refuse, and keeps what it refused. */
    readonly guard: AccessGuard,
    private readonly clockKind: 'manual' | 'system',
    manualStart: number,
    private readonly handlers: ReadonlyMap<string, PipelineHandlers>,
  ) {
    const ingestHandlers = handlers.get('ingest') as PipelineHandlers;
    this.time = manualStart;
    this.coordinatorName = resources.functions.coordinator as string;
    const ingestSpec = deployedFunction(deployment, 'ingest');
    this.pollers = Object.entries(resources.streams).map(
      ([source, stream]) =>
        new LocalPoller(
          clients.kinesis,
          stream,
          (event) => guard.run(ingestSpec, () => ingestHandlers.ingest(event)).then(() => {}),
          faults,
          // A continued run reads on from what ingest registered, as the mapping keeps its place.
          { startAfter: (shard) => this.ctx.ledger.lastSegmentSeq(shardId(`${source}/${shard}`)) },
        ),
    );
  }

  /** Starts the emulator (unless an endpoint is given), creates the resources, and wires the runtime. */
  static async start<T, Out>(
    pipeline: Pipeline<T, Out>,
    options: LocalRunOptions = {},
  ): Promise<LocalRuntime<T, Out>> {
    const configured = (options.settings ? withSettings(pipeline, options.settings) : pipeline) as Pipeline<
      unknown,
      unknown
    >;
    const external = options.endpoint ?? process.env.AWS_ENDPOINT_URL;
    if (options.run !== undefined) {
      const problem = runNameProblem(options.run);
      if (problem) throw new ConfigError(`run name '${options.run}' ${problem}`);
      if (!external) {
        throw new ConfigError(
          'a named run continues from resources on a long-running endpoint: start `sluice local serve` ' +
            'and set AWS_ENDPOINT_URL to it',
        );
      }
    }
    const emulator = external ? undefined : await startEmulator();
    const endpoint = external ?? (emulator as Emulator).endpoint;
    const target = { ...awsTargetFromEnv({ ...process.env, AWS_ENDPOINT_URL: endpoint }), endpoint };
    const clients = createAwsClients(target);
    const faults = new FaultInjector(options.faults);
    const plan = planPipeline(configured);
    const deployment = describeDeployment(configured, plan);
    const run = options.run ?? `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
    const base = `sluice-${configured.name}-${run}`;
    const bucket = base.slice(0, 63).replace(/-+$/, '');
    const table = `${base}-ledger`;
    const guard = new AccessGuard(bucket, table);
    // Order matters: the guard refuses before a fault is injected or a request counted.
    guard.attach(clients);
    addFaultMiddleware(clients.s3, faults);
    addFaultMiddleware(clients.dynamo, faults);
    const requests = new RequestCounter();
    requests.attach(clients.s3);
    requests.attach(clients.dynamo);

    const streams = Object.fromEntries(deployment.streams.map((source) => [source, `${source}-${run}`]));
    const resources: LocalResources = {
      endpoint,
      bucket,
      table,
      stream: streams[configured.source.spec.stream] as string,
      streams,
      embedded: emulator !== undefined,
      functions: Object.fromEntries(deployment.functions.map((fn) => [fn.id, `${base}-${fn.id}`])),
      resumed: false,
    };
    let resumed: boolean;
    try {
      resumed = await provision(clients, resources, options.shards ?? 2, options.run !== undefined);
    } catch (error) {
      destroyAwsClients(clients);
      await emulator?.stop();
      throw error;
    }

    // The functions and the clock call back into the runtime, which is built after them.
    const ref: { runtime?: LocalRuntime<T, Out> } = {};
    const invoker = new LocalInvoker(faults, {
      concurrency: options.concurrency ?? 8,
      ...(options.retries === undefined ? {} : { retries: options.retries }),
    });
    const clockKind = options.clock ?? 'manual';
    const interval = configured.batchIntervalMs;
    const clock = {
      now: () => (clockKind === 'manual' ? (ref.runtime as LocalRuntime<T, Out>).time : Date.now()),
    };
    const names = {
      bucket,
      table,
      functionName: (id: string) => resources.functions[id] ?? `${base}-${id}`,
      streams: Object.entries(streams).map(([source, stream]) => [stream, source] as const),
      sweepAfterMs: 30_000,
    };
    const handlers = new Map<string, PipelineHandlers>();
    for (const spec of deployment.functions) {
      const name = names.functionName(spec.id);
      const fnHandlers = createHandlers(configured, {
        // What the construct sets, and what Lambda adds: the function's own name.
        env: { ...functionEnvironment(deployment, spec.id, names), AWS_LAMBDA_FUNCTION_NAME: name },
        clients,
        send: invoker.transportFor(spec),
        clock,
        print: options.print ?? (() => {}),
      });
      handlers.set(spec.id, fnHandlers);
      const local: LocalFunction = {
        name,
        spec,
        run: (event) => guard.run(spec, () => runHandler(fnHandlers, spec.kind, event)),
      };
      invoker.register(local);
    }
    const coordinator = handlers.get('coordinator') as PipelineHandlers;
    const state = await coordinator.ctx.ledger.pipelineState();
    const manualStart = state
      ? state.zeroTime + state.lastSealed * interval
      : Math.floor(Date.now() / interval) * interval;
    const self: LocalRuntime<T, Out> = new LocalRuntime(
      configured as unknown as Pipeline<T, Out>,
      { ...resources, resumed },
      clients,
      emulator,
      deployment,
      coordinator.ctx,
      invoker,
      faults,
      requests,
      guard,
      clockKind,
      manualStart,
      handlers,
    );
    ref.runtime = self;
    // The stream's zero time is fixed when the run starts, as a deployment's first coordinator
    // pass fixes it: batch 1 then ends one interval after the start. A continued run keeps its own.
    if (!state) {
      await coordinator.ctx.ledger.initPipeline(
        clockKind === 'manual' ? manualStart : Math.floor(Date.now() / interval) * interval,
      );
    }
    return self;
  }

  /**
   * The context one function runs with (its own configuration, invoker and stores), by function id:
   * for tests that reach into a function, such as making its state store fail.
   */
  context(fn: string): RuntimeContext {
    const found = this.handlers.get(fn);
    if (!found) throw new RangeError(`the run has no function '${fn}'`);
    return found.ctx;
  }

  /** The current time of the run's clock. */
  now(): number {
    return this.ctx.clock.now();
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
    const stream = this.resources.streams[source];
    if (!stream) throw new Error(`the pipeline has no source stream '${source}'`);
    // Checked before anything is sent: Kinesis refuses a whole PutRecords call for one such record.
    records.forEach((data, i) => {
      const bytes = data.byteLength + String(this.pushed + i).length;
      if (bytes > LIMITS.kinesisRecordBytes) {
        throw new InvalidInputError(
          `record ${i} is ${bytes} bytes with its partition key, over Kinesis's ${LIMITS.kinesisRecordBytes}-byte record limit`,
        );
      }
    });
    for (let i = 0; i < records.length; i += 500) {
      let entries = records
        .slice(i, i + 500)
        .map((data) => ({ Data: data, PartitionKey: String(this.pushed++) }));
      // PutRecords can fail some records and succeed others; only the failed ones are sent again.
      for (let attempt = 0; entries.length > 0; attempt++) {
        const out = await this.clients.kinesis.send(
          new PutRecordsCommand({ StreamName: stream, Records: entries }),
        );
        if (!out.FailedRecordCount) break;
        if (attempt >= 10) throw new Error(`${out.FailedRecordCount} records could not be put`);
        entries = entries.filter((_, j) => out.Records?.[j]?.ErrorCode);
      }
    }
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
    if (this.clockKind !== 'manual') throw new Error('advance() needs the manual clock');
    await this.ingestPending();
    const before = (await this.ctx.ledger.pipelineState())?.lastSealed ?? 0;
    this.time += intervals * this.pipeline.batchIntervalMs;
    const started = Date.now();
    await this.tick();
    await this.settle();
    // The manual clock stands still while batches run; their processing time is wall time.
    const elapsed = Date.now() - started;
    const after = (await this.ctx.ledger.pipelineState())?.lastSealed ?? 0;
    const results: BatchResult[] = [];
    for (let n = before + 1; n <= after; n++) {
      results.push({ ...(await this.result(batchId(n))), processingMs: elapsed });
    }
    return results;
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
   * is settled once what is behind its failed batch has had one more try.
   */
  async settle(maxRounds = 30): Promise<void> {
    const interval = this.pipeline.batchIntervalMs;
    const dueAt = this.now();
    let haltedRounds = 0;
    for (let round = 0; round < maxRounds; round++) {
      await this.invoker.idle();
      const state = await this.ctx.ledger.pipelineState();
      if (!state) return;
      const { halt, unresolved } = await this.failures();
      // A failed batch that does not halt is skipped by the next coordinator pass.
      const skipping = !halt && unresolved > 0;
      const due = Math.floor((dueAt - state.zeroTime) / interval);
      const behind = !halt && state.lastSealed < due;
      const open = (await this.ctx.ledger.batchesFrom(Math.max(1, state.lastSealed - 99))).filter(
        (b) => b.status === 'sealed' || b.status === 'skipping',
      );
      if (open.length === 0 && !behind && !skipping) return;
      if (halt && open.every((b) => b.batch > halt.batch) && haltedRounds++ > 0) return;
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
    return (await this.failures()).halt;
  }

  /** The failed batches nobody has retried or skipped yet, and the oldest that halts sealing. */
  private async failures(): Promise<{ halt?: Halt; unresolved: number }> {
    const markers = await this.ctx.ledger.failedMarkers();
    for (const marker of markers) {
      const item = await this.ctx.ledger.batch(marker.batch);
      if (item?.status === 'failed' && haltsSealing(this.pipeline, item)) {
        return {
          halt: { batch: item.batch, reason: item.failure?.message ?? marker.message },
          unresolved: markers.length,
        };
      }
    }
    return { unresolved: markers.length };
  }

  /** Runs a failed batch again (as `sluice batches retry` does), then settles. */
  async retryBatch(batch: BatchId): Promise<BatchResult> {
    await retryBatch(this.ctx, batch);
    await this.settle();
    return this.result(batch);
  }

  /** Skips a failed batch (as `sluice batches skip` does), then settles. */
  async skipBatch(batch: BatchId, why = 'skipped by the operator'): Promise<BatchResult> {
    await skipBatch(this.ctx, batch, why);
    await this.settle();
    return this.result(batch);
  }

  /** A batch's totals and output. */
  async result(batch: BatchId): Promise<BatchResult> {
    const item = await this.ctx.ledger.batch(batch);
    if (!item) throw new Error(`batch ${batch} is not sealed`);
    const outputs =
      item.status === 'complete'
        ? await readBatchOutput(this.ctx.objects, outputPrefix(this.ctx.plan.spec), item)
        : [];
    return {
      batch,
      time: item.time,
      status: item.status,
      inputRecords: item.inputRecords,
      outputRecords: item.summary?.outputRecords ?? 0,
      deadLetters: item.summary?.deadLetters ?? 0,
      processingMs: (item.completedAt ?? item.updatedAt) - item.sealedAt,
      schedulingDelayMs: item.sealedAt - item.time,
      outputs,
      records: outputs.flatMap((o) => o.records),
      ...(item.failure ? { failure: item.failure.message } : {}),
    };
  }

  /** The dead letters of a batch, read from the dead-letter prefix (a skipped batch's first). */
  async deadLetters(batch: BatchId): Promise<DeadLetter[]> {
    const letters: DeadLetter[] = [];
    const skipped = await this.ctx.objects.getIfExists(skippedBatchKey(batch));
    if (skipped) letters.push(...(fromJsonLines(skipped) as DeadLetter[]));
    for (let phase = 0; phase < this.ctx.plan.phases.length; phase++) {
      for (const report of await this.ctx.ledger.taskReports(batch, phase)) {
        if (report.deadLetterKey) {
          letters.push(...(fromJsonLines(await this.ctx.objects.get(report.deadLetterKey)) as DeadLetter[]));
        }
      }
    }
    return letters;
  }

  /**
   * System clock: runs the scheduler (a coordinator pass at each batch boundary, one at a time, as
   * a pass may take longer than an interval on a slow endpoint) and the poller in the background
   * until `stopBackground()` or `stop()`.
   */
  startBackground(): void {
    if (this.clockKind !== 'system' || this.background) return;
    let stopped = false;
    const interval = this.pipeline.batchIntervalMs;
    const loops = [
      (async () => {
        while (!stopped) {
          await Promise.all(this.pollers.map((p) => p.pollOnce().catch(() => 0)));
          await sleep(50);
        }
      })(),
      (async () => {
        while (!stopped) {
          await this.tick();
          const now = Date.now();
          await sleep(Math.min(interval - (now % interval) + 5, 1_000));
        }
      })(),
    ];
    this.background = {
      stop: async () => {
        stopped = true;
        await Promise.all(loops);
      },
    };
  }

  /**
   * System clock: runs what was pushed to its end, as `sluice local run` does when its input ends.
   * Everything in the streams is ingested; once a batch sealed after that holds it (or sealing has
   * halted), the scheduler and poller stop (a tick every interval on a slow endpoint would never let
   * the invoker fall idle) and the run settles. Returns why sealing stopped, if it did.
   */
  async finish(): Promise<Halt | undefined> {
    if (this.clockKind !== 'system') throw new Error('finish() needs the system clock');
    this.startBackground();
    await this.ingestPending();
    const ingestedBy = Date.now();
    const interval = this.pipeline.batchIntervalMs;
    let halt: Halt | undefined;
    for (;;) {
      const state = await this.ctx.ledger.pipelineState();
      if (state && state.zeroTime + state.lastSealed * interval > ingestedBy) break;
      halt = await this.halted();
      if (halt) break;
      await sleep(100);
    }
    await this.stopBackground();
    await this.settle();
    return halt;
  }

  /** Stops the background scheduler and poller and waits for their last pass. */
  async stopBackground(): Promise<void> {
    const background = this.background;
    this.background = undefined;
    await background?.stop();
  }

  /** Stops background loops, waits for running invocations, and stops the emulator it started. */
  async stop(): Promise<void> {
    await this.stopBackground();
    await this.invoker.idle();
    destroyAwsClients(this.clients);
    await this.emulator?.stop();
  }
}

/** Runs one invocation of a function with the handler of its kind. */
async function runHandler(handlers: PipelineHandlers, kind: string, event: unknown): Promise<void> {
  switch (kind) {
    case 'coordinator':
      // One pass per invocation: the local scheduler ticks every batch interval.
      await handlers.coordinator(event, () => 0);
      return;
    case 'transform':
      await handlers.transform(event);
      return;
    case 'reduce':
      await handlers.reduce(event);
      return;
    case 'ingest':
      await handlers.ingest(event);
      return;
    default:
      throw new InvalidInputError(`no handler for a function of kind '${kind}'`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Creates what the CDK construct creates on AWS: the bucket, the ledger table and the streams. A
 * named run that finds all of them continues with them (true); finding only some is an error.
 */
async function provision(
  clients: AwsClients,
  resources: LocalResources,
  shards: number,
  named: boolean,
): Promise<boolean> {
  if (named) {
    const found = await existing(clients, resources);
    const all = found.bucket && found.table && found.streams.every(Boolean);
    if (all) return true;
    if (found.bucket || found.table || found.streams.some(Boolean)) {
      throw new ConfigError(
        `run resources are incomplete on ${resources.endpoint} (bucket ${found.bucket}, table ${found.table}, ` +
          `streams ${found.streams.join(',')}): delete them or use another run name`,
      );
    }
  }
  await clients.s3.send(new CreateBucketCommand({ Bucket: resources.bucket }));
  await clients.dynamo.send(
    new CreateTableCommand({
      TableName: resources.table,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    }),
  );
  for (const stream of Object.values(resources.streams)) {
    await clients.kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: shards }));
  }
  for (const stream of Object.values(resources.streams)) {
    let active = false;
    for (let i = 0; i < 200 && !active; i++) {
      const out = await clients.kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
      active = out.StreamDescriptionSummary?.StreamStatus === 'ACTIVE';
      if (!active) await sleep(25);
    }
    if (!active) throw new Error(`stream ${stream} did not become active`);
  }
  return false;
}

/** Which of a run's resources exist already. */
async function existing(
  clients: AwsClients,
  resources: LocalResources,
): Promise<{ bucket: boolean; table: boolean; streams: boolean[] }> {
  const exists = (request: Promise<unknown>): Promise<boolean> =>
    request.then(
      () => true,
      (error: unknown) => {
        const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
        if (
          e.name === 'ResourceNotFoundException' ||
          e.name === 'NotFound' ||
          e.$metadata?.httpStatusCode === 404
        )
          return false;
        throw error;
      },
    );
  const [bucket, table, ...streams] = await Promise.all([
    exists(clients.s3.send(new HeadBucketCommand({ Bucket: resources.bucket }))),
    exists(clients.dynamo.send(new DescribeTableCommand({ TableName: resources.table }))),
    ...Object.values(resources.streams).map((stream) =>
      exists(clients.kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }))),
    ),
  ]);
  return { bucket: bucket === true, table: table === true, streams: streams.map((s) => s === true) };
}
