/**
 * bench:memory — a transform task's and a reduce task's peak heap against their memory budget, as
 * the distinct keys of the input grow: word count's own stages through the executors' `PhaseRunner`
 * and `runSlice` (transform) and `mergeInPasses` (reduce, as `reduceInput` runs a stateless stage),
 * with the budget a function of the given memory gets (`memoryBudgetBytes`), and without one.
 *
 * Each line of the input holds 100 words never seen before, so the map-side combine holds one entry
 * per word (its worst case) and the reduce partition (0 of 4) gets its quarter of them once each.
 * The peak is the V8 heap's high-water mark over the task (exact: the largest heap seen just before
 * a collection), garbage included: the young generation fills (up to about 48 MiB with Node's
 * default semi-spaces) before it is collected. The input is encoded into segments before the
 * measured span (a task reads its slices one ranged GET at a time; here they are in memory before
 * it starts); the transform's span ends with the shuffle file encoded, as the task PUTs it, and the
 * reduce's with its output's JSON Lines.
 *
 * `--heap MB` runs each row in a process of its own whose V8 heap is limited to MB MiB (as a
 * function's memory limits it) and says which task ran out of memory, if one did. `--task reduce`
 * measures the reduce task alone: its input is made by a transform under the smallest budget, before
 * the span.
 *
 * Usage: npm run bench:memory -- [--keys N,N,...] [--memory MB,MB,...] [--heap MB] [--task both|reduce] [--json]
 */
import { spawnSync } from 'node:child_process';
import { encodeSegment, type InputRecord } from '../../lib/encoding/segment';
import type { AnyPipeline } from '../../lib/dsl/pipeline';
import type { Decoder } from '../../lib/dsl/source';
import { planPipeline, type CompiledPhase } from '../../lib/plan';
import { PhaseRunner, runSlice, type DeadLetter } from '../../lib/runtime/datapath';
import { memoryBudgetBytes, mergePlan } from '../../lib/runtime/memory';
import { mergeInPasses } from '../../lib/runtime/reduce-side';
import type { EncodedShuffle } from '../../lib/encoding/shuffle';
import wordcount from '../../examples/wordcount/pipeline';
import { BenchArguments } from '../support/args';
import { describeMachine, formatMachine } from '../support/machine';
import { MemoryWatch } from '../support/memory';
import { fmt, mib, runBench, table, UsageError } from '../support/report';

type Task = 'both' | 'reduce';

interface Options {
  readonly keys: readonly number[];
  /** Function memory, MiB; 0 runs without a budget. */
  readonly memory: readonly number[];
  /** Runs each row in a process of its own with its V8 heap limited to this, MiB. */
  readonly heapMb: number | undefined;
  readonly task: Task;
  readonly json: boolean;
}

function parseArgs(argv: readonly string[]): Options {
  const options: { -readonly [K in keyof Options]: Options[K] } = {
    keys: [50_000, 200_000, 500_000, 1_000_000],
    memory: [0, 128, 1024],
    heapMb: undefined,
    task: 'both',
    json: false,
  };
  const args = new BenchArguments(argv);
  for (let flag = args.next(); flag !== undefined; flag = args.next()) {
    if (flag === '--keys') options.keys = args.wholes();
    else if (flag === '--memory') options.memory = args.wholes();
    else if (flag === '--heap') options.heapMb = args.whole();
    else if (flag === '--task') options.task = taskOf(args.value());
    else if (flag === '--json') options.json = true;
    else
      args.unknown(
        'use --keys N,N,..., --memory MB,MB,... (0: no budget), --heap MB, --task both|reduce, --json',
      );
  }
  return options;
}

function taskOf(value: string): Task {
  if (value === 'both' || value === 'reduce') return value;
  throw new UsageError(`--task is both or reduce, not '${value}'`);
}

/** Records per segment, as ingest writes them for a busy shard. */
const SEGMENT_RECORDS = 1000;

/** Lines of 100 words each seen once, `keys` words in all, as segments. */
function segmentsOf(keys: number): { bodies: Buffer[]; bytes: number } {
  const decoder = wordcount.source.decoder;
  const bodies: Buffer[] = [];
  let records: InputRecord[] = [];
  let seq = 0;
  for (let word = 0; word < keys; word += 100) {
    const line = Array.from({ length: Math.min(100, keys - word) }, (_, i) => `w${word + i}`).join(' ');
    records.push({ seq: String(seq++).padStart(20, '0'), arrivedAt: 0, data: decoder.encode(line) });
    if (records.length === SEGMENT_RECORDS) {
      bodies.push(encodeSegment(records).body);
      records = [];
    }
  }
  if (records.length > 0) bodies.push(encodeSegment(records).body);
  return { bodies, bytes: bodies.reduce((sum, body) => sum + body.length, 0) };
}

function failOnDeadLetter(entry: DeadLetter): never {
  throw new Error(`${entry.kind} error in ${entry.stage}: ${entry.reason}`);
}

/** The transform task of a row. */
interface TransformReading {
  readonly inputBytes: number;
  readonly heapGrowthBytes: number;
  readonly shuffleBytes: number;
  readonly spills: number;
}

/** The reduce task of a row. */
interface ReduceReading {
  /** Heap peak over where it started, garbage included. */
  readonly heapGrowthBytes: number;
  /** The heap just after a collection, at most, over where it started: near its live data. */
  readonly afterGcBytes: number;
  /** Peak memory outside the heap over where it started (the runs read, those held between passes, the output). */
  readonly externalBytes: number;
  readonly mergePasses: number;
  /** Output records (keys of the partition) and their JSON Lines. */
  readonly outputRecords: number;
  readonly outputBytes: number;
}

interface Row {
  readonly keys: number;
  readonly memoryMb: number;
  readonly budgetBytes: number | null;
  readonly transform?: TransformReading;
  readonly reduce?: ReduceReading;
  /** The task that ran out of memory under `--heap`, if one did. */
  readonly outOfMemory?: 'transform' | 'reduce';
}

/**
 * The reduce task of partition 0 of a transform task's shuffle (word count has four: a quarter of
 * the keys), as
 * `reduceInput` runs a stateless stage: `mergeInPasses` under the budget's `mergePlan`, each run a
 * fresh buffer as a ranged GET gives it, output encoded as JSON Lines as it is made.
 */
async function measureReduce(
  next: CompiledPhase,
  shuffle: EncodedShuffle,
  budget: number | undefined,
  watch: MemoryWatch,
): Promise<ReduceReading> {
  if (!next.wide) throw new Error('the reduce phase starts with a keyed stage');
  const runs = [{ start: shuffle.index[0] ?? 0, end: shuffle.index[1] ?? 0 }];
  const encoded = runs.reduce((sum, run) => sum + run.end - run.start, 0);
  const plan = budget === undefined ? { passes: 1, holdRuns: false } : mergePlan(budget, encoded);
  watch.start();
  const runner = new PhaseRunner({
    phase: next,
    next: undefined,
    decoder: wordcount.source.decoder as Decoder<unknown>,
    stream: wordcount.source.spec.stream,
    watermarkHigh: null,
    where: { batch: 1, phase: 1, task: 0 },
    onDeadLetter: failOnDeadLetter,
  });
  await mergeInPasses(
    next.wide,
    plan,
    runs,
    (run) => Promise.resolve(Buffer.from(shuffle.body.subarray(run.start, run.end))),
    runner,
  );
  const terminal = runner.terminal;
  if (terminal.kind !== 'output') throw new Error('the reduce phase ends in the output');
  const outputBytes = terminal.output.body().length;
  const reading = watch.stop();
  return {
    heapGrowthBytes: reading.heapPeak - reading.heapStart,
    afterGcBytes: reading.heapAfterGcPeak - reading.heapStart,
    externalBytes: reading.externalPeak - reading.externalStart,
    mergePasses: plan.passes,
    outputRecords: terminal.output.count,
    outputBytes,
  };
}

/** The transform task of `keys` new words: its shuffle, and what it took when `watch` is given. */
function runTransform(
  phases: { readonly phase: CompiledPhase; readonly next: CompiledPhase },
  keys: number,
  budget: number | undefined,
  watch: MemoryWatch | undefined,
): { shuffle: EncodedShuffle; reading?: TransformReading } {
  const { bodies, bytes } = segmentsOf(keys);
  watch?.start();
  const runner = new PhaseRunner({
    ...phases,
    decoder: wordcount.source.decoder as Decoder<unknown>,
    stream: wordcount.source.spec.stream,
    watermarkHigh: null,
    where: { batch: 1, phase: 0, task: 0 },
    onDeadLetter: failOnDeadLetter,
    ...(budget === undefined ? {} : { memoryBudget: budget }),
  });
  bodies.forEach((body, i) => {
    runSlice(runner, body, { segment: `segments/${i}`, shard: 'lines/shardId-0' });
  });
  const terminal = runner.terminal;
  if (terminal.kind !== 'shuffle') throw new Error('the transform phase ends in a shuffle');
  const shuffle = terminal.shuffle.encode();
  if (!watch) return { shuffle };
  const reading = watch.stop();
  return {
    shuffle,
    reading: {
      inputBytes: bytes,
      heapGrowthBytes: reading.heapPeak - reading.heapStart,
      shuffleBytes: shuffle.body.length,
      spills: terminal.shuffle.spilled,
    },
  };
}

/**
 * One row in this process, each task's reading printed as a JSON line as soon as it is taken when
 * `progress` is set (the parent of a `--heap` run then knows which task ran out of memory).
 */
async function measure(
  keys: number,
  memoryMb: number,
  task: Task,
  watch: MemoryWatch,
  progress?: (part: Partial<Row>) => void,
): Promise<Row> {
  const plan = planPipeline(wordcount as unknown as AnyPipeline);
  const [phase, next] = plan.phases;
  if (!phase || !next) throw new Error('word count has a transform and a reduce phase');
  const budget = memoryMb > 0 ? memoryBudgetBytes(memoryMb) : undefined;
  // Alone, the reduce's input comes from a transform under the smallest budget, before its span.
  const made =
    task === 'both'
      ? runTransform({ phase, next }, keys, budget, watch)
      : runTransform({ phase, next }, keys, memoryBudgetBytes(128), undefined);
  if (made.reading) progress?.({ transform: made.reading });
  const reduce = await measureReduce(next, made.shuffle, budget, watch);
  progress?.({ reduce });
  return {
    keys,
    memoryMb,
    budgetBytes: budget ?? null,
    ...(made.reading ? { transform: made.reading } : {}),
    reduce,
  };
}

/** One row in a process of its own whose V8 heap is limited to `heapMb` MiB. */
function measureInChild(keys: number, memoryMb: number, task: Task, heapMb: number): Row {
  const child = spawnSync(
    process.execPath,
    [
      ...process.execArgv,
      `--max-old-space-size=${heapMb}`,
      process.argv[1] ?? 'bench/memory/run.ts',
      '--keys',
      String(keys),
      '--memory',
      String(memoryMb),
      '--task',
      task,
      '--row',
    ],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  const parts = child.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Partial<Row>);
  const row: Row = Object.assign(
    { keys, memoryMb, budgetBytes: memoryMb > 0 ? memoryBudgetBytes(memoryMb) : null },
    ...parts,
  ) as Row;
  if (child.status === 0) return row;
  if (!/heap out of memory|Allocation failed/.test(child.stderr))
    throw new Error(`the row of ${keys} keys at ${memoryMb} MiB failed: ${child.stderr.slice(-2000)}`);
  return { ...row, outOfMemory: task === 'both' && !row.transform ? 'transform' : 'reduce' };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const watch = new MemoryWatch();
  if (argv.at(-1) === '--row') {
    // One row for a parent's `--heap` run: readings as JSON lines, as they are taken.
    const options = parseArgs(argv.slice(0, -1));
    await measure(options.keys[0] ?? 0, options.memory[0] ?? 0, options.task, watch, (part) => {
      process.stdout.write(`${JSON.stringify(part)}\n`);
    });
    return;
  }
  const options = parseArgs(argv);
  const rows: Row[] = [];
  for (const keys of options.keys) {
    for (const memoryMb of options.memory) {
      rows.push(
        options.heapMb === undefined
          ? await measure(keys, memoryMb, options.task, watch)
          : measureInChild(keys, memoryMb, options.task, options.heapMb),
      );
      // One measurement at a time, each on a heap the one before has left collected.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ machine: describeMachine(), heapMb: options.heapMb, rows })}\n`);
    return;
  }
  const oom = 'out of memory';
  const cell = (row: Row, task: 'transform' | 'reduce', value: (r: Row) => string): string =>
    row.outOfMemory === task ? oom : row[task] ? value(row) : '-';
  const lines = [
    'sluice bench:memory: word count, every word new; a transform task, then the reduce task of its shuffle',
    `machine: ${formatMachine(describeMachine())}`,
    ...(options.heapMb === undefined
      ? []
      : [`each row in a process with its V8 heap limited to ${options.heapMb} MiB`]),
    '',
    ...table([
      [
        'distinct keys',
        'function memory',
        'budget',
        'transform heap peak',
        'shuffle file',
        'spills',
        'reduce heap peak',
        'after GC',
        'external',
        'passes',
        'output',
      ],
      ...rows.map((row) => [
        fmt(row.keys),
        row.memoryMb > 0 ? `${row.memoryMb} MiB` : '-',
        row.budgetBytes === null ? 'none' : `${mib(row.budgetBytes)} MiB`,
        cell(row, 'transform', (r) => `${mib(r.transform?.heapGrowthBytes ?? 0)} MiB`),
        cell(row, 'transform', (r) => `${mib(r.transform?.shuffleBytes ?? 0)} MiB`),
        cell(row, 'transform', (r) => String(r.transform?.spills ?? 0)),
        cell(row, 'reduce', (r) => `${mib(r.reduce?.heapGrowthBytes ?? 0)} MiB`),
        cell(row, 'reduce', (r) => `${mib(r.reduce?.afterGcBytes ?? 0)} MiB`),
        cell(row, 'reduce', (r) => `${mib(r.reduce?.externalBytes ?? 0)} MiB`),
        cell(row, 'reduce', (r) => String(r.reduce?.mergePasses ?? 0)),
        cell(row, 'reduce', (r) => `${mib(r.reduce?.outputBytes ?? 0)} MiB`),
      ]),
    ]),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

runBench('bench:memory', main);
