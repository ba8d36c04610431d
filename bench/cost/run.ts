/**
 * bench:cost — a modelled monthly bill of a pipeline at idle and at steady rates, from the requests
 * and request units its batches used on the embedded emulator, priced by sluice's own cost model
 * (`costReport` and `projectMonth`: what `sluice cost --rate` does), itemised by step, beside the
 * per-record pattern and the smallest Managed Flink application the model also prices.
 *
 * Two pipelines: the word-count example (examples/wordcount) and a stateful word count (the same
 * tokenizer, then a running total per word with `mapWithState`, as Spark's
 * StatefulNetworkWordCount). For each rate, a fresh run: one batch that carries every word of the
 * vocabulary once (not counted: the state then holds the whole vocabulary, as it would after a
 * while), then `--batches` batches of rate x interval lines, metered; idle is the same with no
 * input at all.
 *
 * Usage: npm run bench:cost -- [--rates idle,100,1000,5000] [--pipelines wordcount,stateful]
 *   [--batches N] [--vocabulary N] [--shards N] [--seed N] [--coordinator-waits true|false] [--json]
 */
import { performance } from 'node:perf_hooks';
import type { ProjectionInput } from '../../lib/cost/model';
import { US_EAST_1 } from '../../lib/cost/prices';
import { DEFAULT_MEMORY_MB } from '../../lib/deployment';
import { pipeline, type Pipeline } from '../../lib/dsl/pipeline';
import { s3Jsonl } from '../../lib/dsl/sink';
import { mapWithState } from '../../lib/dsl/state-stages';
import type { Pair } from '../../lib/dsl/types';
import { costReport, type CostReport } from '../../local/cost-report';
import { seededRandom } from '../../local/random';
import { LocalRuntime } from '../../local/runtime';
import wordcount from '../../examples/wordcount/pipeline';
import tokenize from '../../examples/wordcount/stages/tokenize';
import { Corpus } from '../support/corpus';
import { startEmulatorProcess } from '../support/emulator';
import { describeMachine, formatMachine, quietSdkNodeWarning } from '../support/machine';
import { ItemMeter } from '../support/metering';
import { BenchArguments } from '../support/args';
import { fmt, runBench, table, usd, UsageError } from '../support/report';
import { monthBySteps, STEPS, type MonthBySteps, type StepBill } from './steps';

// ---------------------------------------------------------------------------------------------
// Command line

const PIPELINES = ['wordcount', 'stateful'] as const;
type PipelineName = (typeof PIPELINES)[number];

interface Options {
  /** Records per second; 0 is idle. */
  readonly rates: readonly number[];
  readonly pipelines: readonly PipelineName[];
  /** Measured batches per rate; unset: each pipeline's own (`DEFAULT_BATCHES`). */
  readonly batches: number | undefined;
  readonly vocabulary: number;
  readonly shards: number;
  readonly seed: number;
  /** As the construct's `coordinatorWaits`: the run and the month with that coordinator. */
  readonly coordinatorWaits: boolean;
  readonly json: boolean;
}

const USAGE =
  'use --rates idle,100,1000,5000, --pipelines wordcount,stateful, --batches N, --vocabulary N, ' +
  '--shards N, --seed N, --coordinator-waits true|false, --json';

function parseArgs(argv: readonly string[]): Options {
  const options = {
    rates: [0, 100, 1000, 5000] as number[],
    pipelines: [...PIPELINES] as PipelineName[],
    batches: undefined as number | undefined,
    vocabulary: 30_000,
    shards: 2,
    seed: 1,
    coordinatorWaits: true,
    json: false,
  };
  const args = new BenchArguments(argv);
  for (let flag = args.next(); flag !== undefined; flag = args.next()) {
    if (flag === '--rates')
      options.rates = args.wholes((rate) => (rate === 'idle' ? 0 : rate.replace(/\/s$/, '')));
    else if (flag === '--pipelines' || flag === '--pipeline')
      options.pipelines = args.names(PIPELINES, 'pipeline');
    else if (flag === '--batches') options.batches = args.whole();
    else if (flag === '--vocabulary') options.vocabulary = args.whole();
    else if (flag === '--shards') options.shards = args.whole();
    else if (flag === '--seed') options.seed = args.whole();
    else if (flag === '--coordinator-waits') options.coordinatorWaits = args.boolean();
    else if (flag === '--json') options.json = true;
    else args.unknown(USAGE);
  }
  if (options.batches !== undefined && options.batches < 1) {
    throw new UsageError('--batches must be at least 1');
  }
  if (options.vocabulary < 10 || options.vocabulary > 1_000_000) {
    throw new UsageError('--vocabulary must be from 10 to 1,000,000 words');
  }
  if (options.shards < 1) throw new UsageError('--shards must be at least 1');
  return options;
}

// ---------------------------------------------------------------------------------------------
// The pipelines

/**
 * A running total per word: each word's new total is output as its record arrives. Same source and
 * interval as the example.
 */
const running = pipeline({
  name: 'running-wordcount',
  batchInterval: '10s',
  source: wordcount.source,
  stages: [
    tokenize,
    mapWithState<string, number, number, Pair<string, number>>('totals', (word, count, state) => {
      const total = (state.exists() ? state.get() : 0) + (count ?? 0);
      state.update(total);
      return [word, total];
    }),
  ],
  sinks: [s3Jsonl({ prefix: 'running/totals' })],
});

const DESCRIPTIONS: Readonly<Record<PipelineName, string>> = {
  wordcount: 'examples/wordcount: tokenize, then reduceByKey count per batch; s3Jsonl and print sinks',
  stateful: 'the same tokenize, then mapWithState: a running total per word, output per record; s3Jsonl sink',
};

function pipelineOf(name: PipelineName): Pipeline<string, Pair<string, number>> {
  return name === 'wordcount' ? wordcount : running;
}

// ---------------------------------------------------------------------------------------------
// One rate of one pipeline

interface RateResult {
  readonly pipeline: PipelineName;
  readonly recordsPerSecond: number;
  readonly linesPerBatch: number;
  readonly batches: number;
  readonly records: number;
  /** Words (the tokenizer's pairs) per measured batch, on average. */
  readonly wordsPerBatch: number;
  /** Keys of the stateful stage's state after the last batch (0 without state). */
  readonly stateKeys: number;
  readonly stateBytes: number;
  readonly steps: StepBill;
  readonly s3ByKind: MonthBySteps['s3ByKind'];
  readonly report: CostReport;
  readonly seconds: number;
}

/**
 * Measured batches per rate unless `--batches` says: 3 for word count; for the stateful pipeline
 * enough to take in a whole cycle of its state's deltas and the rewrite of its chunks (about 20
 * batches at 100 records/s), so the month is priced at the average, not at the cheap part.
 */
const DEFAULT_BATCHES: Readonly<Record<PipelineName, number>> = { wordcount: 3, stateful: 24 };

function batchesOf(options: Options, name: PipelineName): number {
  return options.batches ?? DEFAULT_BATCHES[name];
}

async function measureRate(
  name: PipelineName,
  recordsPerSecond: number,
  options: Options,
  endpoint: string,
): Promise<RateResult> {
  const started = performance.now();
  const subject = pipelineOf(name);
  const corpus = new Corpus(options.vocabulary, seededRandom(options.seed));
  const run = await LocalRuntime.start(subject, {
    endpoint,
    shards: options.shards,
    ...(options.coordinatorWaits ? {} : { coordinatorWaits: false }),
  });
  try {
    const items = new ItemMeter(run.usage);
    items.attach(run.clients.dynamo);
    await run.pushRaw(corpus.vocabularyLines());
    const [first] = await run.advance();
    if (first?.status !== 'complete')
      throw new Error(`the first batch did not complete: ${first?.failure ?? ''}`);
    run.usage.reset();
    items.reset();
    // The state as the first batch left it; a quiet batch (no input, nothing due) runs no partition
    // and reports none, so the last batch that ran says what the state holds.
    const stateOf = (progress: NonNullable<typeof first.progress>): [number, number] => [
      progress.state.reduce((sum, s) => sum + s.keys, 0),
      progress.state.reduce((sum, s) => sum + s.bytes, 0),
    ];

    const intervalS = subject.batchIntervalMs / 1000;
    const linesPerBatch = Math.round(recordsPerSecond * intervalS);
    let records = 0;
    let words = 0;
    let [stateKeys, stateBytes] = first.progress ? stateOf(first.progress) : [0, 0];
    for (let b = 0; b < batchesOf(options, name); b++) {
      const lines = corpus.lines(linesPerBatch);
      if (lines.length > 0) await run.pushRaw(lines);
      records += lines.length;
      const [result] = await run.advance();
      if (result?.status !== 'complete' || !result.progress) {
        throw new Error(`batch ${String(result?.batch)} did not complete: ${result?.failure ?? 'no batch'}`);
      }
      words += result.progress.phases[0]?.recordsOut ?? 0;
      if (result.progress.state.some((s) => s.partitions > 0))
        [stateKeys, stateBytes] = stateOf(result.progress);
    }

    const input: ProjectionInput = {
      usage: run.usage.usage(),
      batches: batchesOf(options, name),
      records,
      recordsPerSecond,
      batchIntervalMs: subject.batchIntervalMs,
      shards: options.shards,
      memory: DEFAULT_MEMORY_MB,
      ...(options.coordinatorWaits ? {} : { coordinatorWaits: false }),
    };
    const report = costReport({ ...input, prices: US_EAST_1 });
    const { steps, s3ByKind } = monthBySteps(
      input,
      { transform: items.stateOperations('transform'), reduce: items.stateOperations('reduce') },
      US_EAST_1,
    );
    return {
      pipeline: name,
      recordsPerSecond,
      linesPerBatch,
      batches: batchesOf(options, name),
      records,
      wordsPerBatch: Math.round(words / batchesOf(options, name)),
      stateKeys,
      stateBytes,
      steps,
      s3ByKind,
      report,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await run.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Targets and the report

/** The tracked targets (the issue's): a month beyond Kinesis, under this many dollars. */
function targetOf(name: PipelineName, recordsPerSecond: number): number | undefined {
  if (recordsPerSecond === 0) return 3;
  if (recordsPerSecond === 100) return 30;
  if (recordsPerSecond === 1000 && name === 'wordcount') return 40;
  return undefined;
}

function rateLabel(recordsPerSecond: number): string {
  return recordsPerSecond === 0 ? 'idle' : `${fmt(recordsPerSecond)}/s`;
}

const STEP_LABELS: Readonly<Record<(typeof STEPS)[number], string>> = {
  ingest: 'ingest',
  coordinator: 'coordinator',
  seal: 'seal',
  transform: 'transform',
  reduce: 'reduce',
  state: 'state',
  s3: 'S3',
  kinesis: 'Kinesis',
};

function printPipeline(options: Options, name: PipelineName, results: readonly RateResult[]): void {
  console.log('');
  console.log(`${name} (${DESCRIPTIONS[name]})`);
  console.log('  a month, by step (US dollars at us-east-1 list prices):');
  const stepRows = results.map((r) => [
    rateLabel(r.recordsPerSecond),
    fmt(r.linesPerBatch),
    ...STEPS.map((step) => usd(r.steps[step])),
    usd(r.report.projection.month.total),
  ]);
  for (const line of table([
    ['rate', 'lines/batch', ...STEPS.map((s) => STEP_LABELS[s]), 'total'],
    ...stepRows,
  ])) {
    console.log(`  ${line}`);
  }
  console.log('');
  console.log('  beyond Kinesis, beside the alternatives the model prices (a month):');
  const compareRows = results.map((r) => {
    const target = targetOf(name, r.recordsPerSecond);
    const beyond = r.report.projection.beyondKinesis;
    return [
      rateLabel(r.recordsPerSecond),
      usd(beyond),
      target === undefined ? '-' : `< $${target}: ${beyond < target ? 'met' : 'NOT met'}`,
      r.recordsPerSecond === 0 ? '-' : usd(r.report.projection.perMillionRecords),
      usd(r.report.alternatives.perRecord.beyondKinesis),
      usd(r.report.alternatives.flink.total),
      name === 'stateful' ? `${fmt(r.stateKeys)} (${(r.stateBytes / 2 ** 20).toFixed(1)} MiB)` : '-',
      `${r.seconds.toFixed(0)} s`,
    ];
  });
  for (const line of table(
    [
      [
        'rate',
        'sluice',
        'target',
        'per M records*',
        'per-record pattern',
        'Managed Flink floor',
        'state keys',
        'measured in',
      ],
      ...compareRows,
    ],
    1,
  )) {
    console.log(`  ${line}`);
  }
  console.log(
    `  * sluice's whole month (Kinesis included) per million records; measured: ${batchesOf(options, name)} batches per rate, after a first batch of the vocabulary`,
  );
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  quietSdkNodeWarning();
  const machine = describeMachine();
  const progress = (text: string): void => {
    if (!options.json && process.stderr.isTTY) process.stderr.write(`\r${text}\u001b[K`);
  };
  if (!options.json) {
    console.log(
      'sluice bench:cost: a month at steady rates, projected by sluice cost from batches measured on the embedded emulator',
    );
    console.log(`machine: ${formatMachine(machine)}`);
    console.log(
      `runs:    ${options.shards} shards, batch interval 10 s, ${fmt(options.vocabulary)}-word vocabulary (Zipf); per rate a fresh run: ` +
        `a first batch of the vocabulary (not counted), then ${options.batches ?? `${DEFAULT_BATCHES.wordcount} (word count) or ${DEFAULT_BATCHES.stateful} (stateful)`} batches of rate x 10 s lines`,
    );
    console.log(
      "         Lambda GB-seconds from this machine's durations at the default memory; requests and request units as metered",
    );
    console.log(
      options.coordinatorWaits
        ? '         coordinator as deployed by default: it waits for each batch boundary while records arrive'
        : '         coordinatorWaits: false: no coordinator waits; ingest wakes one after each boundary, a tick a minute',
    );
  }
  const started = performance.now();
  const emulator = await startEmulatorProcess();
  const results: RateResult[] = [];
  try {
    for (const name of options.pipelines) {
      for (const rate of options.rates) {
        progress(`${name}: ${rateLabel(rate)}`);
        results.push(await measureRate(name, rate, options, emulator.endpoint));
      }
    }
  } finally {
    progress('');
    await emulator.stop();
  }
  const benchSeconds = (performance.now() - started) / 1000;
  if (options.json) {
    console.log(
      JSON.stringify({
        bench: 'cost',
        machine,
        options,
        results: results.map((r) => ({
          ...r,
          beyondKinesis: r.report.projection.beyondKinesis,
          target: targetOf(r.pipeline, r.recordsPerSecond) ?? null,
        })),
        benchSeconds: Math.round(benchSeconds),
      }),
    );
    return;
  }
  for (const name of options.pipelines) {
    printPipeline(
      options,
      name,
      results.filter((r) => r.pipeline === name),
    );
  }
  console.log('');
  console.log(`bench took ${benchSeconds.toFixed(0)} s`);
}

runBench('bench:cost', main);
