import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  PutRecordsCommand,
} from '@aws-sdk/client-kinesis';
import { randomBytes } from 'node:crypto';
import { awsTargetFromEnv, createAwsClients, destroyAwsClients, type AwsClients } from '../lib/aws';
import { withSettings, type Pipeline, type PipelineSettings } from '../lib/dsl/pipeline';
import { batchId, type BatchId } from '../lib/ids';
import { outputPrefix, planPipeline, sourcesOf } from '../lib/plan';
import type { Source } from '../lib/dsl/source';
import { createRuntimeContext, type RuntimeContext } from '../lib/runtime/context';
import { coordinate } from '../lib/runtime/coordinator';
import { parseKinesisEvent, parseTaskEvent } from '../lib/runtime/events';
import { ingest } from '../lib/runtime/ingest';
import { fromJsonLines, readBatchOutput, type PartitionOutput } from '../lib/runtime/output';
import { handleTask, type DeadLetter } from '../lib/runtime/tasks';
import type { BatchItem } from '../lib/storage/ledger';
import { startEmulator, type Emulator } from './emulator';
import { addFaultMiddleware, FaultInjector, type FaultOptions } from './faults';
import { RequestCounter } from './requests';
import { LocalInvoker } from './invoker';
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

const TICK_EVENT = 'sluice.tick/v1';

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

  private constructor(
    readonly pipeline: Pipeline<T, Out>,
    readonly resources: LocalResources,
    private readonly clients: AwsClients,
    private readonly emulator: Emulator | undefined,
    readonly ctx: RuntimeContext,
    readonly invoker: LocalInvoker,
    readonly faults: FaultInjector,
    /** AWS requests made by the runtime (not by the harness), by command name. */
    readonly requests: RequestCounter,
    private readonly clockKind: 'manual' | 'system',
    manualStart: number,
  ) {
    this.time = manualStart;
    this.pollers = Object.values(resources.streams).map(
      (stream) =>
        new LocalPoller(
          clients.kinesis,
          stream,
          (event) => ingest(ctx, parseKinesisEvent(event)).then(() => {}),
          faults,
        ),
    );
  }

  /** Starts the emulator (unless an endpoint is given), creates the resources, and wires the runtime. */
  static async start<T, Out>(
    pipeline: Pipeline<T, Out>,
    options: LocalRunOptions = {},
  ): Promise<LocalRuntime<T, Out>> {
    const configured = options.settings ? withSettings(pipeline, options.settings) : pipeline;
    const external = options.endpoint ?? process.env.AWS_ENDPOINT_URL;
    const emulator = external ? undefined : await startEmulator();
    const endpoint = external ?? (emulator as Emulator).endpoint;
    const target = { ...awsTargetFromEnv({ ...process.env, AWS_ENDPOINT_URL: endpoint }), endpoint };
    const clients = createAwsClients(target);
    const faults = new FaultInjector(options.faults);
    addFaultMiddleware(clients.s3, faults);
    addFaultMiddleware(clients.dynamo, faults);
    const requests = new RequestCounter();
    requests.attach(clients.s3);
    requests.attach(clients.dynamo);

    const run = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
    const resources: LocalResources = {
      endpoint,
      bucket: `sluice-${configured.name}-${run}`.slice(0, 63),
      table: `sluice-${configured.name}-${run}-ledger`,
      stream: `${configured.source.spec.stream}-${run}`,
      streams: Object.fromEntries(
        sourcesOf(
          configured as Pipeline<unknown, unknown>,
          planPipeline(configured as Pipeline<unknown, unknown>),
        ).map((source) => [source.spec.stream, `${source.spec.stream}-${run}`]),
      ),
      embedded: emulator !== undefined,
    };
    try {
      await provision(clients, resources, options.shards ?? 2);
    } catch (error) {
      destroyAwsClients(clients);
      await emulator?.stop();
      throw error;
    }

    // The invoker and the clock call back into the runtime, which is built after them.
    const ref: { runtime?: LocalRuntime<T, Out> } = {};
    const invoker = new LocalInvoker(
      (fn, event) => (ref.runtime as LocalRuntime<T, Out>).handle(fn, event),
      faults,
      { concurrency: options.concurrency ?? 8, retries: options.retries ?? 2 },
    );
    const clockKind = options.clock ?? 'manual';
    const interval = configured.batchIntervalMs;
    const manualStart = Math.floor(Date.now() / interval) * interval;
    const ctx = createRuntimeContext(configured as Pipeline<unknown, unknown>, {
      config: {
        bucket: resources.bucket,
        table: resources.table,
        functions: {},
        sweepAfterMs: 30_000,
        streams: Object.fromEntries(
          Object.entries(resources.streams).map(([source, stream]) => [stream, source]),
        ),
      },
      clients,
      invoker,
      clock: {
        now: () => (clockKind === 'manual' ? (ref.runtime as LocalRuntime<T, Out>).time : Date.now()),
      },
      ...(options.print ? { print: options.print } : { print: () => {} }),
    });
    const self: LocalRuntime<T, Out> = new LocalRuntime(
      configured,
      resources,
      clients,
      emulator,
      ctx,
      invoker,
      faults,
      requests,
      clockKind,
      manualStart,
    );
    ref.runtime = self;
    // The stream's zero time is fixed when the run starts, as a deployment's first coordinator
    // pass fixes it: batch 1 then ends one interval after the start.
    await ctx.ledger.initPipeline(
      clockKind === 'manual' ? manualStart : Math.floor(Date.now() / interval) * interval,
    );
    return self;
  }

  /** The current time of the run's clock. */
  now(): number {
    return this.ctx.clock.now();
  }

  /** How the local functions run an invocation: the same executors as the Lambda handlers. */
  private async handle(fn: string, event: unknown): Promise<void> {
    if (fn === 'coordinator') {
      const stuckBefore = (event as { stuckBefore?: number }).stuckBefore;
      await coordinate(this.ctx, stuckBefore === undefined ? {} : { stuckBefore });
      return;
    }
    await handleTask(this.ctx, parseTaskEvent(event));
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
   * that ends there and runs it to completion. Returns the batches that completed.
   */
  async advance(intervals = 1): Promise<BatchResult[]> {
    if (this.clockKind !== 'manual') throw new Error('advance() needs the manual clock');
    await this.ingestPending();
    const before = (await this.ctx.ledger.pipelineState())?.lastSealed ?? 0;
    this.time += intervals * this.pipeline.batchIntervalMs;
    const started = Date.now();
    this.invoker.submit('coordinator', { kind: TICK_EVENT });
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

  /**
   * Waits until no invocation is queued or running, then re-drives any batch still open (what the
   * coordinator's sweep does after its timeout), until every batch is complete or failed.
   */
  async settle(maxRounds = 20): Promise<void> {
    for (let round = 0; round < maxRounds; round++) {
      await this.invoker.idle();
      const state = await this.ctx.ledger.pipelineState();
      if (!state) return;
      const open = (await this.ctx.ledger.batchesFrom(Math.max(1, state.lastSealed - 99))).filter(
        (b) => b.status === 'sealed',
      );
      if (open.length === 0) return;
      this.invoker.submit('coordinator', { kind: TICK_EVENT, stuckBefore: Number.MAX_SAFE_INTEGER });
    }
    throw new Error(`batches still open after ${maxRounds} sweeps: the invoker's failed list says why`);
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

  /** The dead letters of a batch, read from the dead-letter prefix. */
  async deadLetters(batch: BatchId): Promise<DeadLetter[]> {
    const letters: DeadLetter[] = [];
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
   * System clock: runs the scheduler (a coordinator pass at each batch boundary) and the poller in
   * the background until `stop()`.
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
          this.invoker.submit('coordinator', { kind: TICK_EVENT });
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

  /** Stops background loops, waits for running invocations, and stops the emulator it started. */
  async stop(): Promise<void> {
    await this.background?.stop();
    await this.invoker.idle();
    destroyAwsClients(this.clients);
    await this.emulator?.stop();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Creates what the CDK construct creates on AWS: the bucket, the ledger table and the stream. */
async function provision(clients: AwsClients, resources: LocalResources, shards: number): Promise<void> {
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
}
