import type { TaskUsage } from '../batch';
import { INGEST_BATCH_SIZE, ingestBatchingWindowMs, type FunctionKind } from '../deployment';
import type { PriceTable } from './prices';
import type { FunctionUsage, Operations, Usage } from './usage';

/** One priced item of a bill: what was used, how much, and what it costs in US dollars. */
export interface CostLine {
  readonly service: 'lambda' | 's3' | 'dynamodb' | 'kinesis' | 'scheduler' | 'flink';
  readonly item: string;
  readonly quantity: number;
  readonly dollars: number;
}

/** A priced bill: its lines, their total, and the total by service. */
export interface Bill {
  readonly lines: readonly CostLine[];
  readonly total: number;
  readonly byService: Readonly<Record<string, number>>;
}

/** Memory of each function kind, MiB: the construct's defaults unless the deployment sets others. */
export type FunctionMemory = Readonly<Record<FunctionKind, number>>;

/** Requests S3 bills at the PUT rate; DELETE is free; every other request is billed as a GET. */
const S3_WRITES = new Set([
  'PutObject',
  'CopyObject',
  'PostObject',
  'ListObjects',
  'ListObjectsV2',
  'CreateMultipartUpload',
  'UploadPart',
  'CompleteMultipartUpload',
]);
const S3_FREE = new Set(['DeleteObject', 'DeleteObjects', 'AbortMultipartUpload']);

/** Seconds in the 730-hour month AWS prices monthly figures by. */
export const MONTH_SECONDS = 730 * 3600;

interface Quantities {
  lambdaRequests: number;
  gbSeconds: number;
  s3Writes: number;
  s3Reads: number;
  writeUnits: number;
  readUnits: number;
  putUnits: number;
}

const none = (): Quantities => ({
  lambdaRequests: 0,
  gbSeconds: 0,
  s3Writes: 0,
  s3Reads: 0,
  writeUnits: 0,
  readUnits: 0,
  putUnits: 0,
});

function addOperations(into: Quantities, operations: Operations, scale = 1): void {
  for (const [key, use] of Object.entries(operations)) {
    const [service, operation = ''] = key.split(':');
    if (service === 's3' && !S3_FREE.has(operation)) {
      if (S3_WRITES.has(operation)) into.s3Writes += use.requests * scale;
      else into.s3Reads += use.requests * scale;
    }
    into.writeUnits += use.writeUnits * scale;
    into.readUnits += use.readUnits * scale;
    into.putUnits += use.putUnits * scale;
  }
}

function addFunction(into: Quantities, use: FunctionUsage, memoryMb: number, scale = 1): void {
  into.lambdaRequests += use.invocations * scale;
  into.gbSeconds += (use.durationMs / 1000) * (memoryMb / 1024) * scale;
  addOperations(into, use.operations, scale);
}

function bill(quantities: Quantities, prices: PriceTable, extra: readonly CostLine[] = []): Bill {
  const q = quantities;
  // [service, item, quantity, price per unit]
  const priced: readonly [CostLine['service'], string, number, number][] = [
    ['lambda', 'requests', q.lambdaRequests, prices.lambda.requestsPerMillion / 1e6],
    ['lambda', 'GB-seconds', q.gbSeconds, prices.lambda.gbSecond],
    ['s3', 'PUT and LIST requests', q.s3Writes, prices.s3.writesPerThousand / 1000],
    ['s3', 'GET requests', q.s3Reads, prices.s3.readsPerThousand / 1000],
    ['dynamodb', 'write request units', q.writeUnits, prices.dynamodb.writeUnitsPerMillion / 1e6],
    ['dynamodb', 'read request units', q.readUnits, prices.dynamodb.readUnitsPerMillion / 1e6],
    ['kinesis', 'PUT payload units', q.putUnits, prices.kinesis.putUnitsPerMillion / 1e6],
  ];
  return billOf([
    ...priced.map(([service, item, quantity, unit]) => ({
      service,
      item,
      quantity,
      dollars: quantity * unit,
    })),
    ...extra,
  ]);
}

/** A bill of priced lines: their total, and the total by service. */
function billOf(lines: readonly CostLine[]): Bill {
  const byService: Record<string, number> = {};
  for (const line of lines) byService[line.service] = (byService[line.service] ?? 0) + line.dollars;
  return { lines, total: lines.reduce((sum, line) => sum + line.dollars, 0), byService };
}

/**
 * What a run cost at list prices: every function invocation (requests, and GB-seconds from its
 * duration and memory), the S3 requests and DynamoDB request units the functions used, and the
 * Kinesis PUT payload units of the records put. Outside the functions only those PUTs count:
 * creating resources and a harness's own reads are not part of a pipeline's bill.
 *
 * @example
 * const bill = priceRun(run.usage.usage(), US_EAST_1, DEFAULT_MEMORY_MB);
 */
export function priceRun(usage: Usage, prices: PriceTable, memory: FunctionMemory): Bill {
  const quantities = none();
  for (const [kind, use] of Object.entries(usage.functions) as [FunctionKind, FunctionUsage][]) {
    addFunction(quantities, use, memory[kind]);
  }
  for (const [key, use] of Object.entries(usage.outside)) {
    if (key.startsWith('kinesis:')) quantities.putUnits += use.putUnits;
  }
  return bill(quantities, prices);
}

/**
 * What tasks cost at list prices, from their reports' usage: an invocation each (or as many as
 * `invocations` says: several ingest invocations summed, or none for a coordinator pass inside a
 * longer invocation), GB-seconds from its duration and its kind's memory, and its requests and units.
 *
 * @example
 * const bill = priceTasks([{ kind: 'reduce', usage }], US_EAST_1, DEFAULT_MEMORY_MB);
 */
export function priceTasks(
  tasks: readonly {
    readonly kind: FunctionKind;
    readonly usage: TaskUsage;
    readonly invocations?: number;
  }[],
  prices: PriceTable,
  memory: FunctionMemory,
): Bill {
  const quantities = none();
  for (const { kind, usage, invocations = 1 } of tasks) {
    const operations = Object.fromEntries(
      Object.entries(usage.requests).map(([key, requests]) => [
        key,
        { requests, readUnits: 0, writeUnits: 0, putUnits: 0 },
      ]),
    );
    addFunction(quantities, { invocations, durationMs: usage.durationMs, operations }, memory[kind]);
    quantities.readUnits += usage.readUnits;
    quantities.writeUnits += usage.writeUnits;
  }
  return bill(quantities, prices);
}

/** What a projection is made from: a metered run, and the deployment and load to project to. */
export interface ProjectionInput {
  readonly usage: Usage;
  /** Batches the run sealed and ran. */
  readonly batches: number;
  /** Records the run put into its stream. */
  readonly records: number;
  readonly recordsPerSecond: number;
  readonly batchIntervalMs: number;
  readonly shards: number;
  readonly memory: FunctionMemory;
  /** The coordinator's timeout. @default 80 s, the construct's */
  readonly coordinatorTimeoutMs?: number;
  /**
   * Whether the coordinator waits for batch boundaries (the construct's `coordinatorWaits`); the
   * run should have been metered with the same setting. @default true
   */
  readonly coordinatorWaits?: boolean;
  /**
   * How long the event-source mapping gathers records before invoking ingest.
   * @default the construct's: `ingestBatchingWindowMs(batchIntervalMs)`
   */
  readonly ingestWindowMs?: number;
}

/** A month of a pipeline at a steady rate: its bill, and the parts of it. */
export interface Projection {
  readonly month: Bill;
  /** The month's bill without Kinesis (shard-hours and PUT units), which every design pays. */
  readonly beyondKinesis: number;
  readonly recordsPerMonth: number;
  /** Dollars per million records, Kinesis included. */
  readonly perMillionRecords: number;
}

/** How long before its timeout the looping coordinator stops (`COORDINATOR_MARGIN_MS`). */
const COORDINATOR_MARGIN_S = 7;

/**
 * Seconds one coordinator invocation bills. It is invoked every minute; under a one-minute batch
 * interval it loops, sealing each batch at its boundary, until the next boundary would fall within
 * its margin of the timeout: on average half an interval before that. At a minute or more it waits
 * for a boundary only if one falls before the margin.
 *
 * @example
 * coordinatorSeconds(10_000, 80_000); // 68
 */
export function coordinatorSeconds(batchIntervalMs: number, timeoutMs: number): number {
  const interval = batchIntervalMs / 1000;
  const usable = timeoutMs / 1000 - COORDINATOR_MARGIN_S;
  if (interval < 60) return Math.max(usable - interval / 2, 0);
  return Math.min(1, usable / interval) * (usable / 2);
}

function perUnit(use: FunctionUsage | undefined, count: number): FunctionUsage | undefined {
  if (!use || count === 0) return undefined;
  const operations = Object.fromEntries(
    Object.entries(use.operations).map(([key, op]) => [
      key,
      {
        requests: op.requests / count,
        readUnits: op.readUnits / count,
        writeUnits: op.writeUnits / count,
        putUnits: op.putUnits / count,
      },
    ]),
  );
  return { invocations: use.invocations / count, durationMs: use.durationMs / count, operations };
}

/**
 * A month of the deployed pipeline at `recordsPerSecond`, projected from a metered local run:
 * transform and reduce tasks as the run's average batch, every batch interval; ingest as the run's
 * average invocation, once per shard per batching window while records arrive; the coordinator as
 * deployed (a minute-long invocation every minute, a pass per batch; with `coordinatorWaits:
 * false`, a woken pass per batch and one per tick); one EventBridge Scheduler
 * tick a minute; Kinesis shard-hours and PUT payload units. A faithful projection needs a run whose
 * batches are the size the rate gives (`--lines-per-batch` = rate x interval).
 *
 * @example
 * const { month, perMillionRecords } = projectMonth({ usage, batches: 6, records: 60_000,
 *   recordsPerSecond: 1000, batchIntervalMs: 10_000, shards: 2, memory: DEFAULT_MEMORY_MB }, US_EAST_1);
 */
export function projectMonth(input: ProjectionInput, prices: PriceTable): Projection {
  const { usage, memory } = input;
  const batchesPerMonth = MONTH_SECONDS / (input.batchIntervalMs / 1000);
  const recordsPerMonth = input.recordsPerSecond * MONTH_SECONDS;
  const quantities = none();

  const runBatches = Math.max(input.batches, 1);
  for (const kind of ['transform', 'reduce'] as const) {
    const use = usage.functions[kind];
    if (use) addFunction(quantities, use, memory[kind], batchesPerMonth / runBatches);
  }

  const ingest = usage.functions.ingest;
  const runCall = perUnit(ingest, ingest?.invocations ?? 0);
  const windowS = (input.ingestWindowMs ?? ingestBatchingWindowMs(input.batchIntervalMs)) / 1000;
  // A shard's records arrive at rate/shards a second; each call takes a window's worth, or a full
  // batch of records first when that comes sooner.
  const perShard = input.recordsPerSecond / input.shards;
  const callsPerShard = Math.min(perShard, Math.max(1 / windowS, perShard / INGEST_BATCH_SIZE));
  const ingestCalls = callsPerShard * input.shards * MONTH_SECONDS;
  // A call costs what the run's average call did: its requests (a segment PUT and its ledger item)
  // do not grow with its records, and its time is mostly theirs.
  const ingestPerCall = runCall;
  if (ingestPerCall) addFunction(quantities, ingestPerCall, memory.ingest, ingestCalls);

  const coordinator = usage.functions.coordinator;
  const perPass = perUnit(coordinator, coordinator?.invocations ?? 0);
  if (perPass) addOperations(quantities, perPass.operations, batchesPerMonth);
  const ticks = MONTH_SECONDS / 60;
  quantities.lambdaRequests += ticks;
  const passSeconds = (perPass?.durationMs ?? 0) / 1000;
  // With no records the coordinator sleeps, waiting or not: each tick seals the minute's batches.
  const asleep = passSeconds * Math.max(1, 60 / (input.batchIntervalMs / 1000));
  if (input.coordinatorWaits === false && input.recordsPerSecond > 0) {
    // No invocation waits: ingest wakes a coordinator after each boundary, whose pass seals the
    // batch; each tick is a pass too, counted with the run's average pass's requests.
    if (perPass) addOperations(quantities, perPass.operations, ticks);
    quantities.lambdaRequests += batchesPerMonth;
    quantities.gbSeconds += (ticks + batchesPerMonth) * passSeconds * (memory.coordinator / 1024);
  } else {
    const looping = coordinatorSeconds(input.batchIntervalMs, input.coordinatorTimeoutMs ?? 80_000);
    const perTick = input.recordsPerSecond > 0 ? looping : Math.min(looping, asleep);
    quantities.gbSeconds += ticks * perTick * (memory.coordinator / 1024);
  }

  const outsidePut = Object.entries(usage.outside)
    .filter(([key]) => key.startsWith('kinesis:'))
    .reduce((sum, [, use]) => sum + use.putUnits, 0);
  const putUnitsPerRecord = input.records > 0 ? outsidePut / input.records : 1;
  quantities.putUnits += putUnitsPerRecord * recordsPerMonth;

  const month = bill(quantities, prices, [
    {
      service: 'scheduler',
      item: 'coordinator ticks',
      quantity: ticks,
      dollars: (ticks / 1e6) * prices.scheduler.invocationsPerMillion,
    },
    kinesisShards(input.shards, prices),
  ]);
  return {
    month,
    beyondKinesis: month.total - (month.byService.kinesis ?? 0),
    recordsPerMonth,
    perMillionRecords: recordsPerMonth > 0 ? month.total / (recordsPerMonth / 1e6) : 0,
  };
}

function kinesisShards(shards: number, prices: PriceTable): CostLine {
  const hours = shards * 730;
  return {
    service: 'kinesis',
    item: 'shard-hours',
    quantity: hours,
    dollars: hours * prices.kinesis.shardHour,
  };
}

/**
 * The common per-record design, for comparison: Lambda on the Kinesis stream (the event-source
 * mapping's default of 100 records per invocation, 250 ms each at 256 MiB) making one DynamoDB
 * `UpdateItem` of an item under 1 KB per record, on the same shards.
 */
export const PER_RECORD_PATTERN = Object.freeze({
  recordsPerInvocation: 100,
  invocationSeconds: 0.25,
  memoryMb: 256,
});

/**
 * A month of the per-record design ({@link PER_RECORD_PATTERN}) at `recordsPerSecond`.
 *
 * @example
 * perRecordMonth(1000, 2, US_EAST_1).total;
 */
export function perRecordMonth(recordsPerSecond: number, shards: number, prices: PriceTable): Bill {
  const records = recordsPerSecond * MONTH_SECONDS;
  const invocations = records / PER_RECORD_PATTERN.recordsPerInvocation;
  const quantities = {
    ...none(),
    lambdaRequests: invocations,
    gbSeconds: invocations * PER_RECORD_PATTERN.invocationSeconds * (PER_RECORD_PATTERN.memoryMb / 1024),
    writeUnits: records,
    putUnits: records,
  };
  return bill(quantities, prices, [kinesisShards(shards, prices)]);
}

/**
 * A month of the smallest Managed Service for Apache Flink application: one KPU and the one KPU
 * of orchestration every application is billed for, always on, with its 50 GB of running
 * application storage (Kinesis not included).
 *
 * @example
 * flinkMonth(US_EAST_1).total; // about 166
 */
export function flinkMonth(prices: PriceTable): Bill {
  const kpuHours = 2 * 730;
  return billOf([
    { service: 'flink', item: 'KPU-hours', quantity: kpuHours, dollars: kpuHours * prices.flink.kpuHour },
    { service: 'flink', item: 'storage GB-months', quantity: 50, dollars: 50 * prices.flink.storageGbMonth },
  ]);
}

/** What `priceBatches` needs of a batch: its progress record's counts. */
export interface PricedBatch {
  readonly inputRecords: number;
  readonly requests: Readonly<Record<string, number>>;
  readonly readUnits: number;
  readonly writeUnits: number;
  /** How long its seal took, ms: a coordinator pass that does not wait is about that long. */
  readonly sealMs?: number;
  readonly functions: Readonly<
    Partial<Record<FunctionKind, { readonly invocations: number; readonly durationMs: number }>>
  >;
}

/** A deployed pipeline over a span of time, as it is deployed. */
export interface DeployedSpan {
  /** The span's length, hours. */
  readonly hours: number;
  readonly batchIntervalMs: number;
  readonly memory: FunctionMemory;
  readonly coordinatorTimeoutMs: number;
  /** Whether the coordinator waits for batch boundaries. @default true */
  readonly coordinatorWaits?: boolean;
  /**
   * How long a pass of a coordinator that does not wait bills, ms.
   * @default the mean seal time of the batches priced
   */
  readonly coordinatorPassMs?: number;
  /** Open shards of the pipeline's streams. */
  readonly shards: number;
}

/**
 * What a deployed pipeline cost over a span, from its batches' progress records: each batch's
 * ingest invocations and tasks (invocations, and GB-seconds from their durations at the deployed
 * memory), the requests and request units of them and of the sealing passes; the coordinator as
 * deployed (a tick a minute, each billed for `coordinatorSeconds`, which covers the sealing passes'
 * time; with `coordinatorWaits: false`, each seal once and each tick as a pass as long as a seal);
 * the scheduler's ticks; the streams' shard-hours and one PUT payload unit per record (records
 * under 25 KB).
 *
 * @example
 * const bill = priceBatches(records, { hours: 24, batchIntervalMs: 10_000, memory, coordinatorTimeoutMs: 80_000, shards: 2 }, US_EAST_1);
 */
export function priceBatches(batches: readonly PricedBatch[], span: DeployedSpan, prices: PriceTable): Bill {
  const quantities = none();
  for (const batch of batches) {
    for (const kind of ['ingest', 'transform', 'reduce'] as const) {
      const time = batch.functions[kind];
      if (time) addFunction(quantities, { ...time, operations: {} }, span.memory[kind]);
    }
    const operations = Object.fromEntries(
      Object.entries(batch.requests).map(([key, requests]) => [
        key,
        { requests, readUnits: 0, writeUnits: 0, putUnits: 0 },
      ]),
    );
    addOperations(quantities, operations);
    quantities.readUnits += batch.readUnits;
    quantities.writeUnits += batch.writeUnits;
    quantities.putUnits += batch.inputRecords;
  }
  const ticks = span.hours * 60;
  quantities.lambdaRequests += ticks;
  if (span.coordinatorWaits === false) {
    // Every batch's seal is billed once, in the pass that made it (a tick's, or one ingest woke for
    // a batch with input), and each tick's own pass about as long as a seal.
    const woken = batches.filter((batch) => batch.inputRecords > 0).length;
    const sealSeconds = batches.reduce((sum, batch) => sum + (batch.sealMs ?? 0), 0) / 1000;
    const passSeconds = (span.coordinatorPassMs ?? meanSealMs(batches)) / 1000;
    quantities.lambdaRequests += woken;
    quantities.gbSeconds += (sealSeconds + ticks * passSeconds) * (span.memory.coordinator / 1024);
  } else {
    quantities.gbSeconds +=
      ticks *
      coordinatorSeconds(span.batchIntervalMs, span.coordinatorTimeoutMs) *
      (span.memory.coordinator / 1024);
  }
  const shardHours = span.shards * span.hours;
  return bill(quantities, prices, [
    {
      service: 'scheduler',
      item: 'coordinator ticks',
      quantity: ticks,
      dollars: (ticks / 1e6) * prices.scheduler.invocationsPerMillion,
    },
    {
      service: 'kinesis',
      item: 'shard-hours',
      quantity: shardHours,
      dollars: shardHours * prices.kinesis.shardHour,
    },
  ]);
}

/** The mean seal time of batches, ms (0 for none). */
function meanSealMs(batches: readonly PricedBatch[]): number {
  if (batches.length === 0) return 0;
  return batches.reduce((sum, batch) => sum + (batch.sealMs ?? 0), 0) / batches.length;
}

/** A bill's lines added to another's, line by line (by service and item). */
function addBills(a: Bill, b: Bill, scaleB = 1): Bill {
  const lines = new Map<string, CostLine>();
  for (const [line, scale] of [
    ...a.lines.map((l) => [l, 1] as const),
    ...b.lines.map((l) => [l, scaleB] as const),
  ]) {
    const key = `${line.service}\u0000${line.item}`;
    const before = lines.get(key);
    lines.set(key, {
      service: line.service,
      item: line.item,
      quantity: (before?.quantity ?? 0) + line.quantity * scale,
      dollars: (before?.dollars ?? 0) + line.dollars * scale,
    });
  }
  return billOf([...lines.values()]);
}

/**
 * A month of a deployed pipeline at `recordsPerSecond`, from its batches over a span: what is paid
 * by the hour (the coordinator, the scheduler, the shards) for 730 hours, and what the batches cost
 * per record (empty batches included) for the month's records.
 *
 * @example
 * const { month } = projectBatches(records, span, 1000, US_EAST_1);
 */
export function projectBatches(
  batches: readonly PricedBatch[],
  span: DeployedSpan,
  recordsPerSecond: number,
  prices: PriceTable,
): Projection {
  // The ticks of a coordinator that does not wait are passes as long as these batches' seals.
  const passed = { ...span, coordinatorPassMs: span.coordinatorPassMs ?? meanSealMs(batches) };
  const hourly = priceBatches([], { ...passed, hours: MONTH_SECONDS / 3600 }, prices);
  const work = priceBatches(batches, { ...passed, hours: 0, shards: 0 }, prices);
  const records = batches.reduce((sum, b) => sum + b.inputRecords, 0);
  const recordsPerMonth = recordsPerSecond * MONTH_SECONDS;
  // Without records in the span, its batches' cost goes on by the hour.
  const scale =
    records > 0 ? recordsPerMonth / records : span.hours > 0 ? MONTH_SECONDS / 3600 / span.hours : 0;
  const month = addBills(hourly, work, scale);
  return {
    month,
    beyondKinesis: month.total - (month.byService.kinesis ?? 0),
    recordsPerMonth,
    perMillionRecords: recordsPerMonth > 0 ? month.total / (recordsPerMonth / 1e6) : 0,
  };
}
