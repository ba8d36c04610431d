import { Command, InvalidArgumentError, Option } from 'commander';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { SluiceError } from '../lib/errors';
import { formatBatch } from '../lib/runtime/output';
import type { Duration } from '../lib/duration';
import { startEmulator } from './emulator';
import { parseFaults } from './faults';
import { loadPipeline, PipelineLoadError } from './load';
import { LocalRuntime, type BatchResult } from './runtime';

// The SDK warns every process on Node 20 about a future release; it is noise for a local tool.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const text = typeof warning === 'string' ? warning : warning.message;
  if (/node >=22|NodeVersionSupportWarning/.test(text) || String(rest[0]).includes('NodeVersionSupport'))
    return;
  (emitWarning as (w: string | Error, ...r: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive whole number');
  return n;
}

interface RunFlags {
  input: string;
  json?: boolean;
  shards: number;
  partitions?: number;
  tasks?: number;
  batchInterval?: string;
  linesPerBatch?: number;
  faults?: string;
  seed?: number;
  top: number;
  concurrency: number;
}

/**
 * Reads lines from a file or standard input, in chunks, without holding the whole input. Each line
 * is one record's bytes as they would be on the stream; the source's decoder reads them.
 */
async function* lineChunks(input: string, size: number): AsyncGenerator<string[]> {
  const stream = input === '-' ? process.stdin : createReadStream(input, 'utf8');
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let chunk: string[] = [];
  for await (const line of lines) {
    if (line.length === 0) continue;
    chunk.push(line);
    if (chunk.length >= size) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length > 0) yield chunk;
}

class Reporter {
  private readonly tty = process.stderr.isTTY === true;
  batches = 0;
  recordsIn = 0;
  deadLetters = 0;
  failed = 0;
  pushed = 0;

  constructor(
    private readonly flags: RunFlags,
    private readonly stage: string,
  ) {}

  batch(result: BatchResult): void {
    this.clearProgress();
    this.batches++;
    this.recordsIn += result.inputRecords;
    this.deadLetters += result.deadLetters;
    if (result.status === 'failed') this.failed++;
    if (this.flags.json) {
      for (const output of result.outputs) {
        process.stdout.write(
          `${JSON.stringify({ batch: result.batch, time: result.time, stage: this.stage, partition: output.partition, records: output.records })}\n`,
        );
      }
    } else {
      process.stdout.write(formatBatch(result, result.outputs, this.flags.top));
      if (result.failure) process.stdout.write(`batch ${result.batch} FAILED: ${result.failure}\n`);
      process.stdout.write('\n');
    }
    this.progress();
  }

  progress(): void {
    if (!this.tty) return;
    process.stderr.write(
      `\r\x1b[2K${this.pushed.toLocaleString()} lines pushed · ${this.batches} batches · ${this.recordsIn.toLocaleString()} records processed · ${this.deadLetters} dead-lettered`,
    );
  }

  clearProgress(): void {
    if (this.tty) process.stderr.write('\r\x1b[2K');
  }
}

async function runCommand(file: string, flags: RunFlags): Promise<number> {
  const pipeline = loadPipeline(file);
  const faults = parseFaults(flags.faults, flags.seed);
  const manual = flags.linesPerBatch !== undefined;
  const run = await LocalRuntime.start(pipeline, {
    shards: flags.shards,
    settings: {
      ...(flags.batchInterval ? { batchInterval: flags.batchInterval as Duration } : {}),
      ...(flags.partitions ? { partitions: flags.partitions } : {}),
      // --tasks N: split each batch into N tasks whatever its size (down to one block each).
      ...(flags.tasks ? { tasks: { max: flags.tasks, targetBytes: 1 } } : {}),
    },
    faults,
    concurrency: flags.concurrency,
    clock: manual ? 'manual' : 'system',
  });
  const where = run.resources.embedded ? 'embedded emulator' : 'endpoint';
  process.stderr.write(
    `sluice: ${pipeline.name} on ${where} ${run.resources.endpoint}: bucket ${run.resources.bucket}, table ${run.resources.table}, stream ${run.resources.stream} (${flags.shards} shards), batch interval ${run.pipeline.batchIntervalMs} ms\n`,
  );
  const stages = run.ctx.plan.phases;
  const reporter = new Reporter(flags, stages[stages.length - 1]?.spec.function ?? 'read');
  // Ctrl-C: stop the runtime (and remove the emulator's data) rather than leave it behind.
  const interrupt = (): void => {
    reporter.clearProgress();
    process.stderr.write('sluice: interrupted\n');
    void run.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  try {
    if (manual) {
      for await (const chunk of lineChunks(flags.input, flags.linesPerBatch as number)) {
        await run.pushRaw(chunk.map((line) => Buffer.from(line, 'utf8')));
        reporter.pushed += chunk.length;
        for (const result of await run.advance()) reporter.batch(result);
      }
    } else {
      await runRealtime(run, flags, reporter);
    }
  } finally {
    process.off('SIGINT', interrupt);
    reporter.clearProgress();
    await run.stop();
  }
  const injected =
    run.faults.crashes > 0 || faults.duplicate
      ? `, faults: ${run.faults.crashes} crashes injected${faults.duplicate ? ', every invocation delivered twice' : ''}`
      : '';
  process.stderr.write(
    `sluice: ${reporter.batches} batches, ${reporter.recordsIn} records in, ${reporter.deadLetters} dead-lettered, ${run.invoker.invocations} invocations${injected}\n`,
  );
  if (reporter.failed > 0) {
    process.stderr.write(`sluice: ${reporter.failed} batches failed\n`);
    return 1;
  }
  return 0;
}

/** Wall-clock mode: lines go into the stream as they are read; batches close every interval. */
async function runRealtime(run: LocalRuntime, flags: RunFlags, reporter: Reporter): Promise<void> {
  run.startBackground();
  let next = 1;
  const printReady = async (): Promise<void> => {
    for (const item of await run.ctx.ledger.batchesFrom(next)) {
      if (item.batch !== next || item.status === 'sealed') return;
      reporter.batch(await run.result(item.batch));
      next++;
    }
  };
  // One print pass at a time: overlapping passes would print a batch twice.
  let printing = Promise.resolve();
  const schedulePrint = (): Promise<void> => (printing = printing.then(printReady).catch(() => {}));
  const printer = setInterval(() => void schedulePrint(), 200);
  try {
    for await (const chunk of lineChunks(flags.input, 500)) {
      await run.pushRaw(chunk.map((line) => Buffer.from(line, 'utf8')));
      reporter.pushed += chunk.length;
      reporter.progress();
    }
    // Everything pushed is ingested once the poller finds nothing more; the first batch sealed
    // after that holds the last of it.
    await run.ingestPending();
    const ingestedBy = Date.now();
    for (;;) {
      const state = await run.ctx.ledger.pipelineState();
      const lastTime = state ? state.zeroTime + state.lastSealed * run.pipeline.batchIntervalMs : 0;
      if (lastTime > ingestedBy) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await run.settle();
  } finally {
    clearInterval(printer);
  }
  await schedulePrint();
}

async function serveCommand(flags: { port: number; host: string; dataDir?: string }): Promise<void> {
  const emulator = await startEmulator({
    port: flags.port,
    host: flags.host,
    ...(flags.dataDir ? { dataDir: flags.dataDir } : {}),
  });
  process.stdout.write(
    [
      `sluice emulator (DynamoDB, Kinesis, S3) listening on ${emulator.endpoint}`,
      '',
      'Point sluice or any AWS SDK at it:',
      `  export AWS_ENDPOINT_URL=${emulator.endpoint} AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test`,
      '  npx sluice local run examples/wordcount/pipeline.ts --input examples/wordcount/input.txt',
      'Look inside with the AWS CLI:',
      `  aws --endpoint-url ${emulator.endpoint} s3 ls --recursive s3://<bucket>/`,
      `  aws --endpoint-url ${emulator.endpoint} dynamodb scan --table-name <table>`,
      `  aws --endpoint-url ${emulator.endpoint} kinesis list-streams`,
      '',
      'Ctrl-C stops it.',
      '',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await emulator.stop();
}

/** The `sluice` command line. */
export function buildProgram(): Command {
  const program = new Command('sluice')
    .description('Serverless micro-batch stream processing: run pipelines locally')
    .showHelpAfterError();
  const local = program
    .command('local')
    .description('run on the embedded emulator, LocalStack, or AWS_ENDPOINT_URL');
  local
    .command('run')
    .description('run a pipeline over lines from a file or standard input, printing each batch')
    .argument('<pipeline>', 'the pipeline module (its default export is a pipeline)')
    .requiredOption('-i, --input <file|->', "input lines, one record each; '-' reads standard input")
    .option('--json', 'print one JSON object per batch output: {batch, time, stage, partition, records}')
    .option('--shards <n>', 'Kinesis shards', positiveInt, 2)
    .option('--partitions <n>', "reduce partitions (default: the pipeline's)", positiveInt)
    .option('--tasks <n>', 'transform tasks per batch (default: by input bytes)', positiveInt)
    .option('--batch-interval <duration>', "batch interval, e.g. '2s' (default: the pipeline's)")
    .option(
      '--lines-per-batch <n>',
      'put exactly n lines in each batch, on a simulated clock (repeatable runs)',
      positiveInt,
    )
    .addOption(
      new Option(
        '--faults <list>',
        "inject faults: 'duplicate' (every invocation twice), 'crash=<p>' (random crashes)",
      ),
    )
    .option('--seed <n>', 'seed of the fault dice', positiveInt)
    .option('--top <n>', 'records shown per batch', positiveInt, 10)
    .option('--concurrency <n>', 'invocations at once', positiveInt, 8)
    .action(async (file: string, flags: RunFlags) => {
      process.exitCode = await runCommand(file, flags);
    });
  local
    .command('serve')
    .description('run the emulator as a long-lived endpoint, like LocalStack')
    .option('-p, --port <port>', 'port', (v) => Number(v), 4566)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--data-dir <dir>', 'keep data in this directory across restarts')
    .action(serveCommand);
  return program;
}

/** Runs the CLI with the process arguments. */
export async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (error) {
    if (error instanceof PipelineLoadError) {
      process.stderr.write(`sluice: ${error.message}\n`);
    } else if (error instanceof SluiceError) {
      process.stderr.write(`sluice: ${error.message}\n  ${error.hint}\n`);
    } else {
      process.stderr.write(
        `sluice: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
    }
    process.exitCode = 2;
  }
}

if (require.main === module) void main();
