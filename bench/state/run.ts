/**
 * bench:state — what a stateful stage's state costs per batch today, on the embedded emulator,
 * through the real runtime (ingest, coordinator, transform and reduce executors, the state store).
 *
 * A state of `--keys` keys over `--partitions` partitions is built by one batch that carries every
 * key once; then batches touching 0 (empty), 100, 10k and 100k of those keys (random, distinct)
 * run in turn, `--runs` times each. Per batch: DynamoDB request units as DynamoDB reports them (by
 * item size, as on-demand bills them), split into state chunks, state heads and the rest of the
 * ledger; requests; the reduce tasks' times and how much of them reading, decoding, encoding and
 * writing state took; the process's memory; and the state's size and what the batch read and wrote
 * of it.
 *
 * The emulator runs in a child process, so the bench process holds only the functions and the
 * harness: its resident memory is theirs, and a task's time is its own work and its waits.
 *
 * Usage: npm run bench:state -- [--keys N] [--partitions N] [--touch N,N,...]
 *   [--operator mapWithState,updateStateByKey,reduceByKeyAndWindow] [--runs N] [--concurrency N] [--seed N] [--json]
 */
import { performance } from 'node:perf_hooks';
import type { StateUsage } from '../../lib/batch';
import { MONTH_SECONDS, priceTasks } from '../../lib/cost/model';
import { US_EAST_1 } from '../../lib/cost/prices';
import { DEFAULT_MEMORY_MB } from '../../lib/deployment';
import { pipeline, type Pipeline } from '../../lib/dsl/pipeline';
import { kinesis, utf8 } from '../../lib/dsl/source';
import { mapWithState, updateStateByKey } from '../../lib/dsl/state-stages';
import { transform } from '../../lib/dsl/transform';
import { reduceByKeyAndWindow } from '../../lib/dsl/window';
import type { Pair } from '../../lib/dsl/types';
import { StateTable } from '../../lib/state/table';
import type { StateStore } from '../../lib/storage/state-store';
import { seededRandom } from '../../local/random';
import { LocalRuntime } from '../../local/runtime';
import { stageId } from '../../lib/ids';
import { startEmulatorProcess } from '../support/emulator';
import { describeMachine, formatMachine, quietSdkNodeWarning, type Machine } from '../support/machine';
import { MemoryWatch, type MemoryReading } from '../support/memory';
import { InvocationTimes, ITEM_CLASSES, ItemMeter, type ItemClass, type ItemUse } from '../support/metering';
import { BenchArguments } from '../support/args';
import { fmt, median, mib, runBench, table, usd, UsageError } from '../support/report';

// ---------------------------------------------------------------------------------------------
// Command line

const OPERATORS = ['mapWithState', 'updateStateByKey', 'reduceByKeyAndWindow'] as const;
type OperatorName = (typeof OPERATORS)[number];

interface Options {
  readonly keys: number;
  readonly partitions: number;
  readonly touch: readonly number[];
  readonly operators: readonly OperatorName[];
  readonly runs: number;
  readonly concurrency: number;
  readonly seed: number;
  readonly json: boolean;
}

const USAGE =
  'use --keys N, --partitions N, --touch N,N,..., --operator mapWithState,updateStateByKey,reduceByKeyAndWindow, ' +
  '--runs N, --concurrency N, --seed N, --json';

function parseArgs(argv: readonly string[]): Options {
  const options = {
    keys: 1_000_000,
    partitions: 4,
    touch: [0, 100, 10_000, 100_000] as number[],
    operators: [...OPERATORS] as OperatorName[],
    runs: 3,
    concurrency: 1,
    seed: 1,
    json: false,
  };
  const args = new BenchArguments(argv);
  for (let flag = args.next(); flag !== undefined; flag = args.next()) {
    if (flag === '--keys') options.keys = args.whole();
    else if (flag === '--partitions') options.partitions = args.whole();
    else if (flag === '--touch') options.touch = args.wholes();
    else if (flag === '--operator' || flag === '--operators')
      options.operators = args.names(OPERATORS, 'operator');
    else if (flag === '--runs') options.runs = args.whole();
    else if (flag === '--concurrency') options.concurrency = args.whole();
    else if (flag === '--seed') options.seed = args.whole();
    else if (flag === '--json') options.json = true;
    else args.unknown(USAGE);
  }
  if (options.keys < KEYS_PER_RECORD) throw new UsageError(`--keys must be at least ${KEYS_PER_RECORD}`);
  if (options.partitions < 1) throw new UsageError('--partitions must be at least 1');
  if (options.runs < 1) throw new UsageError('--runs must be at least 1');
  if (options.concurrency < 1) throw new UsageError('--concurrency must be at least 1');
  const over = options.touch.find((n) => n > options.keys);
  if (over !== undefined) throw new UsageError(`--touch ${over} is more than the ${options.keys} keys`);
  return options;
}

// ---------------------------------------------------------------------------------------------
// The pipelines: records of ten keys, then a running count per key in a stateful stage

/** Keys per input record: a record is a line of space-separated keys. */
const KEYS_PER_RECORD = 10;
const BATCH_INTERVAL_S = 10;
const SHARDS = 2;
/** The stateful stage, and so the reduce function. */
const STAGE = 'totals';

const keysOfLine = transform<string, string, number>('keys', (line, emit) => {
  for (const key of line.split(' ')) if (key) emit(key, 1);
});

/**
 * A running count per key. `mapWithState` as Spark's `StatefulNetworkWordCount` uses it: each record
 * updates its key's state and outputs the key's new count; keys without records are not called
 * (no timeout). `updateStateByKey` with Spark's semantics: every key with state is called every
 * batch, and the output is every key's state. `reduceByKeyAndWindow`: a count per key over the
 * last hour, sliding every batch (360 panes; the bench's batches never see a pane leave), so every
 * batch outputs every key and changes the keys it touches.
 */
function statePipeline(operator: OperatorName): Pipeline<string, Pair<string, number>> {
  const options = {
    name: 'bench-state',
    batchInterval: `${BATCH_INTERVAL_S}s`,
    source: kinesis({ stream: 'keys', decode: utf8 }),
  } as const;
  if (operator === 'mapWithState') {
    return pipeline({
      ...options,
      stages: [
        keysOfLine,
        mapWithState<string, number, number, Pair<string, number>>(STAGE, (key, value, state) => {
          const total = (state.exists() ? state.get() : 0) + (value ?? 0);
          state.update(total);
          return [key, total];
        }),
      ],
    });
  }
  if (operator === 'reduceByKeyAndWindow') {
    return pipeline({
      ...options,
      stages: [
        keysOfLine,
        reduceByKeyAndWindow<string, number>(STAGE, (a, b) => a + b, {
          length: '1h',
          slide: `${BATCH_INTERVAL_S}s`,
        }),
      ],
    });
  }
  return pipeline({
    ...options,
    stages: [
      keysOfLine,
      updateStateByKey<string, number, number>(STAGE, (values, total) =>
        values.reduce((sum, v) => sum + v, total ?? 0),
      ),
    ],
  });
}

/** Key i of the state: zero-padded so every key of a run has the same length. */
function keyName(i: number, keys: number): string {
  return `k${String(i).padStart(String(keys - 1).length, '0')}`;
}

/** Records carrying the given keys, ten to a record. */
function recordsOf(indices: readonly number[], keys: number): Uint8Array[] {
  const records: Uint8Array[] = [];
  for (let i = 0; i < indices.length; i += KEYS_PER_RECORD) {
    const line = indices.slice(i, i + KEYS_PER_RECORD).map((k) => keyName(k, keys));
    records.push(Buffer.from(line.join(' ')));
  }
  return records;
}

/** `count` distinct keys out of `keys`, drawn at random. */
function randomKeys(count: number, keys: number, random: () => number): number[] {
  const chosen = new Set<number>();
  while (chosen.size < count) chosen.add(Math.floor(random() * keys));
  return [...chosen];
}

// ---------------------------------------------------------------------------------------------
// Measuring one batch

/** What one batch did and used. */
interface BatchFigures {
  /** Distinct keys the batch's records carry. */
  readonly touched: number;
  readonly records: number;
  readonly outputRecords: number;
  /** DynamoDB request units of the batch: its ingest, its seal and its tasks. */
  readonly readUnits: number;
  readonly writeUnits: number;
  readonly dynamoRequests: number;
  /** The same, by class of item. */
  readonly items: Readonly<Record<ItemClass, ItemUse>>;
  /** The same, by class of item and operation (`chunk PutItem`). */
  readonly itemOperations: Readonly<Record<string, ItemUse>>;
  /** Of which ingest (the segments' ledger items). */
  readonly ingestWriteUnits: number;
  /**
   * The request units the batch's progress record says it used (from its task reports, each up to
   * the report: a reducer commits its state after its report, so those writes are not in it).
   */
  readonly progressUnits: { readonly read: number; readonly write: number };
  readonly s3Requests: number;
  /** Requests by operation (`dynamodb:PutItem`), of the batch's invocations. */
  readonly requests: Readonly<Record<string, number>>;
  /** Each reduce task's invocation, ms. */
  readonly reduceMs: readonly number[];
  /** Per partition: reading the state's chunks (`StateStore.read`), ms. */
  readonly readMs: readonly number[];
  /** Per partition: from the first chunk write to the head's commit, ms. */
  readonly writeMs: readonly number[];
  /** Decoding chunks into the partitions' tables (`StateTable.load`), ms, summed over the batch. */
  readonly decodeMs: number;
  /** Encoding the tables into chunks (`StateTable.encode`), ms, summed over the batch. */
  readonly encodeMs: number;
  readonly transformMs: readonly number[];
  /** From the coordinator's tick to the batch's completion (the harness's `advance`), ms. */
  readonly batchMs: number;
  readonly memory: MemoryReading;
  /** The stage's state after the batch, over its partitions (the progress record's). */
  readonly state: StateUsage;
}

/**
 * How long each partition spent reading its state's chunks and writing them and its head, by
 * wrapping the reduce function's own `StateStore` (observed only: every call goes through unchanged).
 */
class StateStoreTimes {
  private readonly reads = new Map<number, number>();
  private readonly commitStart = new Map<number, number>();
  private readonly commitEnd = new Map<number, number>();

  constructor(store: StateStore) {
    const read = store.read.bind(store);
    store.read = async (ref, head) => {
      const started = performance.now();
      try {
        return await read(ref, head);
      } finally {
        this.reads.set(ref.partition, (this.reads.get(ref.partition) ?? 0) + performance.now() - started);
      }
    };
    const readKeyed = store.readKeyed.bind(store);
    store.readKeyed = async (ref, generation, wanted, asOf) => {
      const started = performance.now();
      try {
        return await readKeyed(ref, generation, wanted, asOf);
      } finally {
        this.reads.set(ref.partition, (this.reads.get(ref.partition) ?? 0) + performance.now() - started);
      }
    };
    const readAllKeyed = store.readAllKeyed.bind(store);
    store.readAllKeyed = async (ref, generation, asOf) => {
      const started = performance.now();
      try {
        return await readAllKeyed(ref, generation, asOf);
      } finally {
        this.reads.set(ref.partition, (this.reads.get(ref.partition) ?? 0) + performance.now() - started);
      }
    };
    const writeKeyed = store.writeKeyed.bind(store);
    store.writeKeyed = (ref, generation, chunk, version, data, read) => {
      if (!this.commitStart.has(ref.partition)) this.commitStart.set(ref.partition, performance.now());
      return writeKeyed(ref, generation, chunk, version, data, read);
    };
    const writeChunk = store.writeChunk.bind(store);
    store.writeChunk = (ref, chunk, slot, version, data) => {
      if (!this.commitStart.has(ref.partition)) this.commitStart.set(ref.partition, performance.now());
      return writeChunk(ref, chunk, slot, version, data);
    };
    const commit = store.commit.bind(store);
    store.commit = async (ref, previous, next) => {
      if (!this.commitStart.has(ref.partition)) this.commitStart.set(ref.partition, performance.now());
      try {
        return await commit(ref, previous, next);
      } finally {
        this.commitEnd.set(ref.partition, performance.now());
      }
    };
  }

  readMs(): number[] {
    return [...this.reads.values()];
  }

  writeMs(): number[] {
    return [...this.commitEnd].map(([partition, end]) => end - (this.commitStart.get(partition) ?? end));
  }

  reset(): void {
    this.reads.clear();
    this.commitStart.clear();
    this.commitEnd.clear();
  }
}

/**
 * How long the reducers spent decoding chunks into their tables and encoding them again, by
 * wrapping `StateTable`'s `load` and `encode` (observed only; in this process only reducers use
 * state tables).
 */
class StateCodecTimes {
  decodeMs = 0;
  encodeMs = 0;

  constructor() {
    const prototype = StateTable.prototype;
    const load = Object.getOwnPropertyDescriptor(prototype, 'load')?.value as StateTable['load'];
    const encode = Object.getOwnPropertyDescriptor(prototype, 'encode')?.value as StateTable['encode'];
    const encodeChunks = Object.getOwnPropertyDescriptor(prototype, 'encodeChunks')
      ?.value as StateTable['encodeChunks'];
    const decoded = (ms: number): void => {
      this.decodeMs += ms;
    };
    const encoded = (ms: number): void => {
      this.encodeMs += ms;
    };
    prototype.load = function (this: StateTable, chunk) {
      const started = performance.now();
      try {
        load.call(this, chunk);
      } finally {
        decoded(performance.now() - started);
      }
    };
    prototype.encode = function (this: StateTable, chunks, onRefused) {
      const started = performance.now();
      try {
        return encode.call(this, chunks, onRefused);
      } finally {
        encoded(performance.now() - started);
      }
    };
    prototype.encodeChunks = function (this: StateTable, chunks, only, onRefused) {
      const started = performance.now();
      try {
        return encodeChunks.call(this, chunks, only, onRefused);
      } finally {
        encoded(performance.now() - started);
      }
    };
  }

  reset(): void {
    this.decodeMs = 0;
    this.encodeMs = 0;
  }
}

/** A run of the pipeline with everything the bench watches attached to it. */
class StateRun {
  private readonly items: ItemMeter;
  private readonly times: InvocationTimes;
  private readonly store: StateStoreTimes;
  private readonly memory = new MemoryWatch();

  constructor(
    readonly run: LocalRuntime<string, Pair<string, number>>,
    private readonly codec: StateCodecTimes,
  ) {
    this.items = new ItemMeter(run.usage);
    this.items.attach(run.clients.dynamo);
    this.times = new InvocationTimes(run.usage, () => this.memory.mark());
    const reducer = run.deployment.functions.find((fn) => fn.kind === 'reduce');
    if (!reducer) throw new Error('the pipeline has no reduce function');
    this.store = new StateStoreTimes(run.context(reducer.id).state);
  }

  /**
   * Puts the records into the stream and has ingest write them ahead, then runs one batch: the
   * coordinator's tick seals it, its tasks run, it completes. What the batch used is metered from
   * the put on (the producer's own requests are outside any function and left out).
   */
  async batch(records: readonly Uint8Array[], touched: number): Promise<BatchFigures> {
    const { run } = this;
    run.usage.reset();
    this.items.reset();
    if (records.length > 0) {
      await run.pushRaw(records);
      await run.ingestPending();
    }
    this.times.reset();
    this.store.reset();
    this.codec.reset();
    this.memory.start();
    const [result] = await run.advance();
    const memory = this.memory.stop();
    if (result?.status !== 'complete' || !result.progress) {
      throw new Error(`batch ${String(result?.batch)} did not complete: ${result?.failure ?? 'no batch'}`);
    }
    const state = result.progress.state[0];
    if (!state) throw new Error('the progress record has no state');
    const usage = run.usage.usage();
    const requests: Record<string, number> = {};
    let readUnits = 0;
    let writeUnits = 0;
    let dynamoRequests = 0;
    let s3Requests = 0;
    for (const use of Object.values(usage.functions)) {
      for (const [operation, op] of Object.entries(use.operations)) {
        requests[operation] = (requests[operation] ?? 0) + op.requests;
        readUnits += op.readUnits;
        writeUnits += op.writeUnits;
        if (operation.startsWith('dynamodb:')) dynamoRequests += op.requests;
        if (operation.startsWith('s3:')) s3Requests += op.requests;
      }
    }
    const ingest = Object.values(usage.functions.ingest?.operations ?? {});
    return {
      touched,
      records: records.length,
      outputRecords: result.outputRecords,
      readUnits,
      writeUnits,
      dynamoRequests,
      items: this.items.byClass(),
      itemOperations: this.items.byOperation(),
      ingestWriteUnits: ingest.reduce((sum, op) => sum + op.writeUnits, 0),
      progressUnits: { read: result.progress.readUnits, write: result.progress.writeUnits },
      s3Requests,
      requests: Object.fromEntries(Object.entries(requests).sort(([a], [b]) => a.localeCompare(b))),
      reduceMs: this.times.of('reduce'),
      readMs: this.store.readMs(),
      writeMs: this.store.writeMs(),
      decodeMs: this.codec.decodeMs,
      encodeMs: this.codec.encodeMs,
      transformMs: this.times.of('transform'),
      batchMs: result.processingMs,
      memory,
      state,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// One operator: build the state, then the batches

interface OperatorResult {
  readonly operator: OperatorName;
  readonly buildSeconds: number;
  readonly build: BatchFigures;
  /** By touched keys, in the order of `--touch`: every run's figures. */
  readonly batches: readonly { readonly touched: number; readonly runs: readonly BatchFigures[] }[];
}

/** Warm-up batches at most before measuring (the layout is chosen by a running average). */
const MAX_WARM_UPS = 40;

/** Whether every partition of the stateful stage keeps its state in the keyed layout. */
async function allKeyed(
  run: LocalRuntime<string, Pair<string, number>>,
  partitions: number,
): Promise<boolean> {
  const ctx = run.context(STAGE);
  for (let partition = 0; partition < partitions; partition++) {
    const head = await ctx.state.head({ stage: stageId(STAGE), partition, since: 1 });
    if (head.kind !== 'sluice.state/keyed@1') return false;
  }
  return true;
}

async function benchOperator(
  operator: OperatorName,
  options: Options,
  endpoint: string,
  codec: StateCodecTimes,
  progress: (text: string) => void,
): Promise<OperatorResult> {
  const run = await LocalRuntime.start(statePipeline(operator), {
    endpoint,
    shards: SHARDS,
    concurrency: options.concurrency,
    settings: { partitions: options.partitions },
  });
  try {
    const bench = new StateRun(run, codec);
    const random = seededRandom(options.seed);
    const every = Array.from({ length: options.keys }, (_, i) => i);
    progress(`${operator}: building ${fmt(options.keys)} keys`);
    const buildStarted = performance.now();
    const build = await bench.batch(recordsOf(every, options.keys), options.keys);
    const buildSeconds = (performance.now() - buildStarted) / 1000;
    // Batches of 100 keys first that are not measured: the code each later batch runs is then
    // compiled, and a state built by one batch touching every key, which the slotted layout suits,
    // has moved to the layout its sparse batches suit (mapWithState's keyed layout: the running
    // average of keys touched must fall far enough first).
    let warmUps = 0;
    do {
      progress(`${operator}: warming up (${warmUps + 1})`);
      await bench.batch(recordsOf(randomKeys(100, options.keys, random), options.keys), 100);
      warmUps++;
    } while (
      operator === 'mapWithState' &&
      warmUps < MAX_WARM_UPS &&
      !(await allKeyed(run, options.partitions))
    );
    const runs = new Map<number, BatchFigures[]>(options.touch.map((n) => [n, []]));
    for (let round = 0; round < options.runs; round++) {
      // Reversed every other round, so that drift on a shared machine spreads over the sizes.
      const order = round % 2 === 0 ? options.touch : [...options.touch].reverse();
      for (const touched of order) {
        progress(`${operator}: run ${round + 1}/${options.runs}, batch touching ${fmt(touched)} keys`);
        const records = recordsOf(randomKeys(touched, options.keys, random), options.keys);
        runs.get(touched)?.push(await bench.batch(records, touched));
      }
    }
    return {
      operator,
      buildSeconds,
      build,
      batches: options.touch.map((touched) => ({ touched, runs: runs.get(touched) ?? [] })),
    };
  } finally {
    await run.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Summaries, targets and the report

/** Batches in a month at the bench pipeline's interval. */
const BATCHES_PER_MONTH = MONTH_SECONDS / BATCH_INTERVAL_S;

/** What DynamoDB would bill for a month of batches like this one, one per interval. */
function dynamoMonth(readUnits: number, writeUnits: number): number {
  const usage = { durationMs: 0, requests: {}, readUnits, writeUnits };
  return (
    priceTasks([{ kind: 'reduce', usage, invocations: 0 }], US_EAST_1, DEFAULT_MEMORY_MB).total *
    BATCHES_PER_MONTH
  );
}

/** The medians over a size's runs of what one batch used. */
interface BatchSummary {
  readonly touched: number;
  readonly runs: number;
  readonly readUnits: number;
  readonly writeUnits: number;
  readonly dynamoRequests: number;
  readonly items: Readonly<Record<ItemClass, ItemUse>>;
  readonly itemOperations: Readonly<Record<string, ItemUse>>;
  readonly ingestWriteUnits: number;
  readonly progressUnits: { readonly read: number; readonly write: number };
  readonly s3Requests: number;
  readonly outputRecords: number;
  /**
   * A reduce task's time, ms: its invocation (median and slowest of the batch's), and per
   * partition reading its state's chunks, decoding them, encoding the state again, writing the
   * changed chunks and the head, and the rest (the shuffle's reads, applying the batch, the output,
   * the report and the ledger).
   */
  readonly reduceMs: {
    readonly tasks: number;
    readonly median: number;
    readonly max: number;
    readonly stateRead: number;
    readonly decode: number;
    readonly encode: number;
    readonly stateWrite: number;
    readonly rest: number;
  };
  readonly transformTaskMs: number;
  readonly batchMs: number;
  /** Memory of the bench process over the batch, MiB (see `MemoryReading`). */
  readonly memoryMiB: {
    readonly heapStart: number;
    readonly heapPeak: number;
    readonly externalPeak: number;
    readonly rssStart: number;
    readonly rssPeak: number;
    readonly rssPeakSource: MemoryReading['rssPeakSource'];
  };
  readonly state: StateUsage;
  /** A month of such batches at the interval, DynamoDB request units only, us-east-1 list prices. */
  readonly dynamoDollarsPerMonth: number;
  readonly requests: Readonly<Record<string, number>>;
}

/** A reduce task's time by part, per partition, of one batch. */
function reduceParts(f: BatchFigures): {
  task: number;
  read: number;
  decode: number;
  encode: number;
  write: number;
} {
  const tasks = Math.max(f.reduceMs.length, 1);
  return {
    task: median(f.reduceMs),
    read: median(f.readMs),
    decode: f.decodeMs / tasks,
    encode: f.encodeMs / tasks,
    write: median(f.writeMs),
  };
}

function summarize(touched: number, runs: readonly BatchFigures[]): BatchSummary {
  const med = (pick: (f: BatchFigures) => number): number => median(runs.map(pick));
  const ms = (pick: (f: BatchFigures) => number): number => Math.round(med(pick));
  const toMiB = (pick: (f: BatchFigures) => number): number => Math.round(med(pick) / 2 ** 20);
  const medianUse = (pick: (f: BatchFigures) => ItemUse | undefined): ItemUse => ({
    requests: med((f) => pick(f)?.requests ?? 0),
    items: med((f) => pick(f)?.items ?? 0),
    readUnits: med((f) => pick(f)?.readUnits ?? 0),
    writeUnits: med((f) => pick(f)?.writeUnits ?? 0),
  });
  const items = Object.fromEntries(
    ITEM_CLASSES.map((itemClass) => [itemClass, medianUse((f) => f.items[itemClass])]),
  ) as Record<ItemClass, ItemUse>;
  const itemOperations = Object.fromEntries(
    [...new Set(runs.flatMap((f) => Object.keys(f.itemOperations)))]
      .sort()
      .map((key) => [key, medianUse((f) => f.itemOperations[key])]),
  );
  const readUnits = med((f) => f.readUnits);
  const writeUnits = med((f) => f.writeUnits);
  const operations = [...new Set(runs.flatMap((f) => Object.keys(f.requests)))].sort();
  return {
    touched,
    runs: runs.length,
    readUnits,
    writeUnits,
    dynamoRequests: med((f) => f.dynamoRequests),
    items,
    itemOperations,
    ingestWriteUnits: med((f) => f.ingestWriteUnits),
    progressUnits: { read: med((f) => f.progressUnits.read), write: med((f) => f.progressUnits.write) },
    s3Requests: med((f) => f.s3Requests),
    outputRecords: med((f) => f.outputRecords),
    reduceMs: {
      tasks: med((f) => f.reduceMs.length),
      median: ms((f) => median(f.reduceMs)),
      max: ms((f) => Math.max(0, ...f.reduceMs)),
      stateRead: ms((f) => reduceParts(f).read),
      decode: ms((f) => reduceParts(f).decode),
      encode: ms((f) => reduceParts(f).encode),
      stateWrite: ms((f) => reduceParts(f).write),
      rest: ms((f) => {
        const p = reduceParts(f);
        return p.task - p.read - p.decode - p.encode - p.write;
      }),
    },
    transformTaskMs: ms((f) => median(f.transformMs)),
    batchMs: ms((f) => f.batchMs),
    memoryMiB: {
      heapStart: toMiB((f) => f.memory.heapStart),
      heapPeak: toMiB((f) => f.memory.heapPeak),
      externalPeak: toMiB((f) => f.memory.externalPeak),
      rssStart: toMiB((f) => f.memory.rssStart),
      rssPeak: toMiB((f) => f.memory.rssPeak),
      rssPeakSource: runs[0]?.memory.rssPeakSource ?? 'VmHWM',
    },
    state: {
      keys: med((f) => f.state.keys),
      chunks: med((f) => f.state.chunks),
      bytes: med((f) => f.state.bytes),
      chunksRead: med((f) => f.state.chunksRead),
      bytesRead: med((f) => f.state.bytesRead),
      chunksWritten: med((f) => f.state.chunksWritten),
      bytesWritten: med((f) => f.state.bytesWritten),
    },
    dynamoDollarsPerMonth: dynamoMonth(readUnits, writeUnits),
    requests: Object.fromEntries(operations.map((op) => [op, med((f) => f.requests[op] ?? 0)])),
  };
}

/** The tracked targets (the issue's): a `mapWithState` state of 1M keys. */
const TARGETS: readonly { readonly touched: number; readonly units: number }[] = [
  { touched: 100, units: 50 },
  { touched: 0, units: 10 },
];

interface TargetCheck {
  readonly operator: OperatorName;
  readonly touched: number;
  readonly under: number;
  readonly readUnits: number;
  readonly writeUnits: number;
  readonly met: boolean;
}

function checkTargets(operator: OperatorName, summaries: readonly BatchSummary[]): TargetCheck[] {
  if (operator !== 'mapWithState') return [];
  return TARGETS.flatMap(({ touched, units }) => {
    const s = summaries.find((summary) => summary.touched === touched);
    if (!s) return [];
    // State units: the chunks, the time index and the heads (the ledger's are the batch's, stateful or not).
    const readUnits = s.items.chunk.readUnits + s.items.head.readUnits;
    const writeUnits = s.items.chunk.writeUnits + s.items.head.writeUnits;
    const met = readUnits < units && writeUnits < units;
    return [{ operator, touched, under: units, readUnits, writeUnits, met }];
  });
}

function printTable(rows: readonly (readonly string[])[]): void {
  for (const line of table(rows, 0)) console.log(`  ${line}`);
}

/** Average bytes of a chunk, as KiB (bytes under one). */
function chunkKiB(bytes: number, chunks: number): string {
  const average = bytes / Math.max(chunks, 1);
  return average < 1024 ? `${average.toFixed(0)} B` : `${(average / 1024).toFixed(0)} KiB`;
}

function printOperator(
  options: Options,
  result: OperatorResult,
  summaries: readonly BatchSummary[],
  targets: readonly TargetCheck[],
): void {
  const { build } = result;
  const size = build.state;
  const buildMs = result.buildSeconds * 1000;
  console.log('');
  console.log(
    `${result.operator}: ${fmt(size.keys)} keys in ${options.partitions} partitions: ${fmt(size.chunks)} chunks, ` +
      `${mib(size.bytes)} MiB (${chunkKiB(size.bytes, size.chunks)} a chunk on average, ` +
      `${(size.bytes / Math.max(size.keys, 1)).toFixed(1)} bytes a key)`,
  );
  console.log(
    `  built by one batch of ${fmt(build.records)} records in ${(buildMs / 1000).toFixed(1)} s ` +
      `(put and ingest ${((buildMs - build.batchMs) / 1000).toFixed(1)} s, the batch ${(build.batchMs / 1000).toFixed(1)} s): ` +
      `${fmt(build.writeUnits)} write units, ${fmt(build.state.chunksWritten)} chunks written; ` +
      `reduce tasks ${fmt(median(build.reduceMs))} ms (median), V8 heap peak ${mib(build.memory.heapPeak)} MiB`,
  );
  const runs = options.runs === 1 ? 'one run' : `medians of ${options.runs} runs`;
  console.log('');
  console.log(
    `  DynamoDB per batch (ingest, seal, tasks): request units as DynamoDB reports them, by item size ` +
      `(a write 1 per KB, a consistent read 1 per 4 KB); ${runs}`,
  );
  printTable([
    [
      'touched',
      'read u',
      'write u',
      'requests',
      'chunks read',
      'chunk read u',
      'chunks written',
      'chunk write u',
      'heads r/w',
      'ledger r/w',
      'DynamoDB/month*',
    ],
    ...summaries.map((s) => [
      fmt(s.touched),
      fmt(s.readUnits),
      fmt(s.writeUnits),
      fmt(s.dynamoRequests),
      `${fmt(s.state.chunksRead)} x ${chunkKiB(s.state.bytesRead, s.state.chunksRead)}`,
      fmt(s.items.chunk.readUnits),
      `${fmt(s.state.chunksWritten)} x ${chunkKiB(s.state.bytesWritten, s.state.chunksWritten)}`,
      fmt(s.items.chunk.writeUnits),
      `${fmt(s.items.head.readUnits)} / ${fmt(s.items.head.writeUnits)}`,
      `${fmt(s.items.ledger.readUnits)} / ${fmt(s.items.ledger.writeUnits)}`,
      usd(s.dynamoDollarsPerMonth),
    ]),
  ]);
  console.log(
    `  * a month of such batches, one every ${BATCH_INTERVAL_S} s: DynamoDB request units only, us-east-1`,
  );
  for (const t of targets) {
    console.log(
      `  target: a batch touching ${fmt(t.touched)} keys under ${t.under} read and ${t.under} write units of state: ` +
        `${fmt(t.readUnits)} read, ${fmt(t.writeUnits)} write: ${t.met ? 'met' : 'NOT met'}`,
    );
  }
  const missed = summaries.filter((s) => s.progressUnits.write < s.writeUnits);
  if (missed.length > 0) {
    console.log(
      `  the progress records say fewer write units (the done marks and the completion are counted nowhere): ` +
        missed
          .map((s) => `${fmt(s.progressUnits.write)} of ${fmt(s.writeUnits)} (${fmt(s.touched)} touched)`)
          .join(', '),
    );
  }
  console.log('');
  console.log(
    `  a reduce task, ms (${runs}): its invocation (median / slowest of the batch), and per partition: reading ` +
      'the chunks, decoding them, encoding the state, writing the changed chunks and the head, the rest',
  );
  console.log(
    `  (the shuffle, applying the batch, output, report); the batch: tick to completion, ${options.concurrency === 1 ? 'tasks one at a time' : `${options.concurrency} tasks at a time`}`,
  );
  printTable([
    ['touched', 'task', 'state read', 'decode', 'encode', 'state write', 'rest', 'transform task', 'batch'],
    ...summaries.map((s) => [
      fmt(s.touched),
      `${fmt(s.reduceMs.median)} / ${fmt(s.reduceMs.max)}`,
      fmt(s.reduceMs.stateRead),
      fmt(s.reduceMs.decode),
      fmt(s.reduceMs.encode),
      fmt(s.reduceMs.stateWrite),
      fmt(s.reduceMs.rest),
      fmt(s.transformTaskMs),
      fmt(s.batchMs),
    ]),
  ]);
  console.log('');
  console.log(
    '  memory of the bench process over the batch, MiB: V8 heap in use (at the start after a full GC; ' +
      "peak exact, from V8's GC profiler),",
  );
  const rssSource =
    summaries[0]?.memoryMiB.rssPeakSource === 'maxRSS'
      ? 'since the process started'
      : 'VmHWM, reset at the start';
  console.log(`  buffers outside the heap (peak), resident set (at the start, peak: ${rssSource})`);
  printTable([
    ['touched', 'heap start', 'heap peak', 'buffers peak', 'RSS start', 'RSS peak', 'output records'],
    ...summaries.map((s) => [
      fmt(s.touched),
      fmt(s.memoryMiB.heapStart),
      fmt(s.memoryMiB.heapPeak),
      fmt(s.memoryMiB.externalPeak),
      fmt(s.memoryMiB.rssStart),
      fmt(s.memoryMiB.rssPeak),
      fmt(s.outputRecords),
    ]),
  ]);
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  quietSdkNodeWarning();
  const machine: Machine = describeMachine();
  const progress = (text: string): void => {
    if (!options.json && process.stderr.isTTY) process.stderr.write(`\r${text}\u001b[K`);
  };
  if (!options.json) {
    console.log('sluice bench:state: a stateful stage on the embedded emulator, through the real runtime');
    console.log(`machine: ${formatMachine(machine)}`);
    console.log(
      `state:   ${fmt(options.keys)} keys over ${options.partitions} partitions, records of ${KEYS_PER_RECORD} keys, ` +
        `${SHARDS} shards, batch interval ${BATCH_INTERVAL_S} s; batches touching ${options.touch.map(fmt).join(', ')} keys, ` +
        `${options.runs} runs each`,
    );
  }
  const started = performance.now();
  const emulator = await startEmulatorProcess();
  const codec = new StateCodecTimes();
  const results: OperatorResult[] = [];
  try {
    for (const operator of options.operators) {
      results.push(await benchOperator(operator, options, emulator.endpoint, codec, progress));
    }
  } finally {
    progress('');
    await emulator.stop();
  }
  const benchSeconds = (performance.now() - started) / 1000;
  const report = results.map((result) => {
    const summaries = result.batches.map((b) => summarize(b.touched, b.runs));
    return { result, summaries, targets: checkTargets(result.operator, summaries) };
  });
  if (options.json) {
    console.log(
      JSON.stringify({
        bench: 'state',
        machine,
        options,
        operators: report.map(({ result, summaries, targets }) => ({
          operator: result.operator,
          buildSeconds: Math.round(result.buildSeconds * 10) / 10,
          build: summarize(result.build.touched, [result.build]),
          batches: summaries,
          targets,
          runs: result.batches,
        })),
        benchSeconds: Math.round(benchSeconds),
      }),
    );
    return;
  }
  for (const { result, summaries, targets } of report) printOperator(options, result, summaries, targets);
  console.log('');
  console.log(`bench took ${benchSeconds.toFixed(0)} s`);
}

runBench('bench:state', main);
