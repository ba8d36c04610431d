/**
 * bench:memory — a transform task's peak heap against its memory budget, as the distinct keys of
 * its input grow: word count's own stages through the executors' `PhaseRunner` and `runSlice`, with
 * the budget a function of the given memory gets (`memoryBudgetBytes`), and without one.
 *
 * Each line of the input holds 100 words never seen before, so the map-side combine holds one entry
 * per word: its worst case. The peak is the V8 heap's high-water mark over the task (exact: the
 * largest heap seen just before a collection), garbage included: the young generation fills (up to
 * about 48 MiB with Node's default semi-spaces) before it is collected. The input is encoded into
 * segments before the measured span (a task reads its slices one ranged GET at a time; here they
 * are in memory before it starts), and the span ends with the shuffle file encoded, as the task
 * PUTs it.
 *
 * Usage: npm run bench:memory -- [--keys N,N,...] [--memory MB,MB,...] [--json]
 */
import { encodeSegment, type InputRecord } from '../../lib/encoding/segment';
import type { AnyPipeline } from '../../lib/dsl/pipeline';
import type { Decoder } from '../../lib/dsl/source';
import { planPipeline } from '../../lib/plan';
import { PhaseRunner, runSlice, type DeadLetter } from '../../lib/runtime/datapath';
import { memoryBudgetBytes } from '../../lib/runtime/memory';
import wordcount from '../../examples/wordcount/pipeline';
import { BenchArguments } from '../support/args';
import { describeMachine, formatMachine } from '../support/machine';
import { MemoryWatch } from '../support/memory';
import { fmt, mib, runBench, table } from '../support/report';

interface Options {
  readonly keys: readonly number[];
  /** Function memory, MiB; 0 runs without a budget. */
  readonly memory: readonly number[];
  readonly json: boolean;
}

function parseArgs(argv: readonly string[]): Options {
  const options = { keys: [50_000, 200_000, 500_000, 1_000_000], memory: [0, 128, 1024], json: false };
  const args = new BenchArguments(argv);
  for (let flag = args.next(); flag !== undefined; flag = args.next()) {
    if (flag === '--keys') options.keys = args.wholes();
    else if (flag === '--memory') options.memory = args.wholes();
    else if (flag === '--json') options.json = true;
    else args.unknown('use --keys N,N,..., --memory MB,MB,... (0: no budget), --json');
  }
  return options;
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

interface Row {
  readonly keys: number;
  readonly memoryMb: number;
  readonly budgetBytes: number | null;
  readonly inputBytes: number;
  readonly heapGrowthBytes: number;
  readonly shuffleBytes: number;
  readonly spills: number;
}

function measure(keys: number, memoryMb: number, watch: MemoryWatch): Row {
  const plan = planPipeline(wordcount as unknown as AnyPipeline);
  const [phase, next] = plan.phases;
  if (!phase || !next) throw new Error('word count has a transform and a reduce phase');
  const { bodies, bytes } = segmentsOf(keys);
  const budget = memoryMb > 0 ? memoryBudgetBytes(memoryMb) : undefined;
  watch.start();
  const runner = new PhaseRunner({
    phase,
    next,
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
  const encoded = terminal.shuffle.encode();
  const reading = watch.stop();
  return {
    keys,
    memoryMb,
    budgetBytes: budget ?? null,
    inputBytes: bytes,
    heapGrowthBytes: reading.heapPeak - reading.heapStart,
    shuffleBytes: encoded.body.length,
    spills: terminal.shuffle.spilled,
  };
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const watch = new MemoryWatch();
  const rows: Row[] = [];
  for (const keys of options.keys) {
    for (const memoryMb of options.memory) rows.push(measure(keys, memoryMb, watch));
  }
  // One measurement at a time, each on a heap the one before has left collected.
  await new Promise((resolve) => setImmediate(resolve));
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ machine: describeMachine(), rows })}\n`);
    return;
  }
  const lines = [
    'sluice bench:memory: one transform task of word count, every word new (one map entry each)',
    `machine: ${formatMachine(describeMachine())}`,
    '',
    ...table([
      ['distinct keys', 'input', 'function memory', 'budget', 'heap peak', 'shuffle file', 'spills'],
      ...rows.map((row) => [
        fmt(row.keys),
        `${mib(row.inputBytes)} MiB`,
        row.memoryMb > 0 ? `${row.memoryMb} MiB` : '-',
        row.budgetBytes === null ? 'none' : `${mib(row.budgetBytes)} MiB`,
        `${mib(row.heapGrowthBytes)} MiB`,
        `${mib(row.shuffleBytes)} MiB`,
        String(row.spills),
      ]),
    ]),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

runBench('bench:memory', main);
