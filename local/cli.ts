import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { SluiceError } from '../lib/errors';
import { formatBatch } from '../lib/runtime/output';
import { toMillis, type Duration } from '../lib/duration';
import { startEmulator } from './emulator';
import { parseFaults, type FaultOptions } from './faults';
import { DEFAULT_MEMORY_MB } from '../lib/deployment';
import type { PriceTable } from '../lib/cost/prices';
import {
  choosePrices,
  costReport,
  formatCostReport,
  formatStackCostReport,
  parseRate,
  stackCostReport,
} from './cost-report';
import { openStack } from './stack';
import { formatBatchDetail, formatBatches, formatStatus, pipelineStatus } from './status';
import { openTarget, type OperatedPipeline, type TargetFlags } from './target';
import type { OperatorCommand } from '../lib/runtime/operator';
import { batchId, type BatchId } from '../lib/ids';
import type { RuntimeContext } from '../lib/runtime/context';
import { quietProgress, readProgress, type BatchProgress } from '../lib/runtime/batch-progress';
import { DescribeStreamSummaryCommand } from '@aws-sdk/client-kinesis';
import { batchRange, parseBatchOrTime, sealedBatchTimes, type BatchOrTime } from './batch-range';
import { initProject, InitError } from './init';
import { contextSource, startUi, type UiSource } from './ui/server';
import { readRecords, unreadableReason } from './input';
import { loadPipeline, PipelineLoadError } from './load';
import { formatReplayedBatch, formatReplayReport, replay } from './replay';
import { LocalRuntime, runNameProblem, type BatchResult } from './runtime';

// The SDK warns every process on Node 20 about a future release; it is noise for a local tool.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning: string | Error, ...rest: unknown[]) => {
  const text = typeof warning === 'string' ? warning : warning.message;
  if (/node >=22|NodeVersionSupportWarning/.test(text) || String(rest[0]).includes('NodeVersionSupport'))
    return;
  (emitWarning as (w: string | Error, ...r: unknown[]) => void)(warning, ...rest);
};

/**
 * A mistake in how the command was run (a flag, the input file): the person who ran it can fix it,
 * so it is reported as one line and a hint, without a stack.
 */
class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

/** A flag parser for whole numbers in a range; `why` says where the range comes from. */
function wholeNumber(min: number, max = Number.MAX_SAFE_INTEGER, why = ''): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `from ${min} to ${max}`;
      throw new InvalidArgumentError(`It must be a whole number ${range}${why}.`);
    }
    return n;
  };
}

const positiveInt = wholeNumber(1);

/** A run name: it becomes part of resource names. */
function runName(value: string): string {
  const problem = runNameProblem(value);
  if (problem) throw new InvalidArgumentError(`It ${problem}.`);
  return value;
}

function duration(value: string): Duration {
  try {
    toMillis(value as Duration);
  } catch (error) {
    if (error instanceof SluiceError) throw new InvalidArgumentError(`${error.message}.`);
    throw error;
  }
  return value as Duration;
}

function faultList(value: string): FaultOptions {
  try {
    return parseFaults(value);
  } catch (error) {
    if (error instanceof RangeError) throw new InvalidArgumentError(`${error.message}.`);
    throw error;
  }
}

interface RunFlags {
  input: string;
  json?: boolean;
  shards: number;
  partitions?: number;
  tasks?: number;
  batchInterval?: Duration;
  linesPerBatch?: number;
  faults?: FaultOptions;
  seed?: number;
  top: number;
  concurrency: number;
  run?: string;
  /** Price the run and project a month of it (`--cost`, and `sluice cost`). */
  cost?: boolean;
  /** Records per second to project the month at. */
  rate?: number;
  prices?: string;
  region?: string;
  /** Print no batches (`sluice cost`). */
  quiet?: boolean;
  /** Serve the streaming page while the run goes on, and after it until Ctrl-C. */
  ui?: boolean;
  uiPort?: number;
  /** `--no-coordinator-waits`: as the construct's `coordinatorWaits: false`. */
  coordinatorWaits?: boolean;
}

/** The input as a byte stream; a terminal is told how to end it, as nothing else would. */
function openInput(input: string): NodeJS.ReadableStream {
  if (input !== '-') return createReadStream(input);
  if (process.stdin.isTTY) {
    process.stderr.write('sluice: reading records from the terminal, one per line; Ctrl-D ends the input\n');
  }
  return process.stdin;
}

class Reporter {
  private readonly tty = process.stderr.isTTY;
  batches = 0;
  recordsIn = 0;
  deadLetters = 0;
  failed = 0;
  pushed = 0;
  refused = 0;
  halted = false;

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
    const ended =
      result.status === 'failed'
        ? `batch ${result.batch} FAILED: ${result.failure ?? 'no reason recorded'}`
        : result.status === 'skipped'
          ? `batch ${result.batch} SKIPPED, its input dead-lettered: ${result.failure ?? 'skipped'}`
          : undefined;
    if (this.flags.quiet) {
      if (ended) process.stderr.write(`sluice: ${ended}\n`);
    } else if (this.flags.json) {
      for (const output of result.outputs) {
        process.stdout.write(
          `${JSON.stringify({ batch: result.batch, time: result.time, stage: this.stage, partition: output.partition, records: output.records })}\n`,
        );
      }
      // Then one object with the batch's progress: the lines with `records` are its outputs.
      if (result.progress) {
        process.stdout.write(
          `${JSON.stringify({ batch: result.batch, time: result.time, progress: result.progress })}\n`,
        );
      }
      // What ended a batch otherwise is said aside.
      if (ended) process.stderr.write(`sluice: ${ended}\n`);
    } else {
      process.stdout.write(formatBatch(result, result.outputs, this.flags.top));
      if (ended) process.stdout.write(`${ended}\n`);
      process.stdout.write('\n');
    }
    this.progress();
  }

  /** A line too long to be a Kinesis record: said, counted, and not sent. */
  refuse(line: number, bytes: number): void {
    this.clearProgress();
    this.refused++;
    process.stderr.write(
      `sluice: line ${line} is ${bytes} bytes, over Kinesis's 1 MiB record limit; not sent\n`,
    );
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

  /** Sealing stopped at a failed batch (`onBatchFailure: 'halt'`): say which, why, and what next. */
  halt(halt: { readonly batch: number; readonly reason: string }): void {
    if (this.halted) return;
    this.halted = true;
    this.clearProgress();
    process.stderr.write(
      `sluice: halted at failed batch ${halt.batch}: ${halt.reason}\n` +
        '  later input stays in the stream; retry or skip the batch (onBatchFailure: skip skips by itself)\n',
    );
  }
}

async function runCommand(file: string, flags: RunFlags): Promise<number> {
  // Checked first too: a price file that cannot be read fails before anything runs.
  const prices = flags.cost ? choosePricesOrExplain(flags) : undefined;
  // Checked before the pipeline loads and the emulator starts, so that a typo fails at once.
  const unreadable = flags.input === '-' ? undefined : unreadableReason(flags.input);
  if (unreadable !== undefined) {
    throw new UsageError(
      `cannot read input '${flags.input}': ${unreadable}`,
      "--input takes a file of records, one per line, or '-' for standard input",
    );
  }
  const pipeline = loadPipeline(file);
  const faults: FaultOptions = { ...flags.faults, ...(flags.seed === undefined ? {} : { seed: flags.seed }) };
  const manual = flags.linesPerBatch !== undefined;
  const run = await LocalRuntime.start(pipeline, {
    shards: flags.shards,
    settings: {
      ...(flags.batchInterval ? { batchInterval: flags.batchInterval } : {}),
      ...(flags.partitions ? { partitions: flags.partitions } : {}),
      // --tasks N: split each batch into N tasks whatever its size (down to one block each).
      ...(flags.tasks ? { tasks: { max: flags.tasks, targetBytes: 1 } } : {}),
    },
    faults,
    concurrency: flags.concurrency,
    clock: manual ? 'manual' : 'system',
    ...(flags.run ? { run: flags.run } : {}),
    ...(flags.coordinatorWaits === false ? { coordinatorWaits: false } : {}),
  });
  const where = run.resources.embedded ? 'embedded emulator' : 'endpoint';
  const continued = run.resources.resumed ? `continuing run '${flags.run ?? ''}' ` : '';
  process.stderr.write(
    `sluice: ${continued}${pipeline.name} on ${where} ${run.resources.endpoint}: bucket ${run.resources.bucket}, table ${run.resources.table}, stream ${run.resources.stream} (${flags.shards} shards), batch interval ${run.pipeline.batchIntervalMs} ms\n`,
  );
  const paused = (await run.ctx.ledger.pipeline.get())?.paused;
  if (paused) {
    if (!manual) {
      await run.stop();
      throw new UsageError(
        `run '${flags.run ?? ''}' is paused since ${new Date(paused.at).toISOString()} (${paused.reason}): no batch would close`,
        `resume it first: sluice resume ${file} --run ${flags.run ?? '<name>'} (or use --lines-per-batch, which writes the input ahead to wait)`,
      );
    }
    process.stderr.write(
      `sluice: run '${flags.run ?? ''}' is paused (${paused.reason}): the input is written ahead and waits for sluice resume\n`,
    );
  }
  const stages = run.ctx.plan.phases;
  const reporter = new Reporter(flags, stages[stages.length - 1]?.spec.function ?? 'read');
  const ui = flags.ui ? await startUi(contextSource(run.ctx), { port: flags.uiPort ?? 4040 }) : undefined;
  if (ui) process.stderr.write(`sluice: streaming page at ${ui.url}\n`);
  // Ctrl-C: stop the runtime (and remove the emulator's data) rather than leave it behind.
  const interrupt = (): void => {
    reporter.clearProgress();
    process.stderr.write('sluice: interrupted\n');
    void run.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  try {
    if (flags.linesPerBatch !== undefined) {
      const records = readRecords(openInput(flags.input), {
        chunk: flags.linesPerBatch,
        onRefused: (line, bytes) => reporter.refuse(line, bytes),
      });
      for await (const chunk of records) {
        await run.pushRaw(chunk);
        reporter.pushed += chunk.length;
        const results = await run.advance();
        for (const result of results) reporter.batch(result);
        const halt = results.length === 0 ? await run.halted() : undefined;
        if (halt) {
          reporter.halt(halt);
          break;
        }
      }
    } else {
      await runRealtime(run, flags, reporter);
    }
    if (ui) {
      process.stderr.write(`sluice: input ended; the page stays at ${ui.url} until Ctrl-C\n`);
      await new Promise<never>(() => {});
    }
  } finally {
    process.off('SIGINT', interrupt);
    reporter.clearProgress();
    await ui?.close();
    await run.stop();
  }
  const injected =
    run.faults.crashes > 0 || faults.duplicate
      ? `, faults: ${run.faults.crashes} crashes injected${faults.duplicate ? ', every invocation delivered twice' : ''}`
      : '';
  process.stderr.write(
    `sluice: ${reporter.batches} batches, ${reporter.recordsIn} records in, ${reporter.deadLetters} dead-lettered${reporter.refused > 0 ? `, ${reporter.refused} refused` : ''}, ${run.invoker.invocations} invocations${injected}\n`,
  );
  if (prices) {
    const report = costReport({
      usage: run.usage.usage(),
      batches: reporter.batches,
      records: reporter.pushed,
      recordsPerSecond: flags.rate ?? 1000,
      batchIntervalMs: run.pipeline.batchIntervalMs,
      shards: flags.shards,
      memory: DEFAULT_MEMORY_MB,
      ...(flags.coordinatorWaits === false ? { coordinatorWaits: false } : {}),
      prices,
    });
    process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : formatCostReport(report));
  }
  if (reporter.failed > 0) process.stderr.write(`sluice: ${reporter.failed} batches failed\n`);
  if (flags.run) process.stderr.write(`sluice: run '${flags.run}' kept; --run ${flags.run} continues it\n`);
  return reporter.failed > 0 || reporter.refused > 0 || reporter.halted ? 1 : 0;
}

/** Wall-clock mode: lines go into the stream as they are read; batches close every interval. */
async function runRealtime(run: LocalRuntime, flags: RunFlags, reporter: Reporter): Promise<void> {
  run.startBackground();
  let next = 1;
  const printReady = async (): Promise<void> => {
    for (const item of await run.ctx.ledger.batches.from(next)) {
      if (item.batch !== next || item.status === 'sealed' || item.status === 'skipping') return;
      reporter.batch(await run.result(item.batch));
      next++;
    }
  };
  // One print pass at a time: overlapping passes would print a batch twice.
  let printing = Promise.resolve();
  const schedulePrint = (): Promise<void> => (printing = printing.then(printReady).catch(() => {}));
  const printer = setInterval(() => void schedulePrint(), 200);
  try {
    const records = readRecords(openInput(flags.input), {
      chunk: 500,
      eager: true,
      onRefused: (line, bytes) => reporter.refuse(line, bytes),
    });
    for await (const chunk of records) {
      await run.pushRaw(chunk);
      reporter.pushed += chunk.length;
      reporter.progress();
    }
    const halt = await run.finish();
    if (halt) reporter.halt(halt);
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

/** Commander's exits that are not mistakes: help asked for, or shown for a bare command. */
const HELP_EXITS = new Set(['commander.help', 'commander.helpDisplayed', 'commander.version']);

/**
 * Makes a command's parse errors usage errors: one line and a pointer to its help, rather than
 * commander's printout of the whole help, which buries the line that says what is wrong.
 */
function usageErrors(command: Command, name: string): Command {
  return command.exitOverride((error) => {
    if (HELP_EXITS.has(error.code)) throw error;
    throw new UsageError(error.message.replace(/^error: /, ''), `see '${name} --help'`);
  });
}

function choosePricesOrExplain(flags: { prices?: string; region?: string }): PriceTable {
  try {
    return choosePrices(flags);
  } catch (error) {
    throw new UsageError((error as Error).message, 'see --prices and --region in --help');
  }
}

function rate(value: string): number {
  try {
    return parseRate(value);
  } catch (error) {
    throw new InvalidArgumentError(`${(error as Error).message}.`);
  }
}

/** `sluice cost`: a run on the emulator in batches of the size the rate gives, priced; or a stack's batches. */
async function costCommand(
  file: string,
  flags: Omit<RunFlags, 'input'> & { input?: string } & CostRangeFlags,
): Promise<void> {
  if (flags.stack !== undefined) {
    if (flags.input !== undefined) {
      throw new UsageError(
        'sluice cost --stack prices what the stack ran; it takes no --input',
        'drop --input',
      );
    }
    await stackCostCommand(file, { ...flags, stack: flags.stack });
    return;
  }
  if (flags.from !== undefined || flags.to !== undefined) {
    throw new UsageError('--from and --to choose batches of a deployed stack', 'give --stack <name> too');
  }
  if (flags.input === undefined) {
    throw new UsageError(
      'sluice cost needs sample input to run (or a deployed stack to read)',
      'give --input <file> (or --stack <name>)',
    );
  }
  const recordsPerSecond = flags.rate ?? 1000;
  const pipeline = loadPipeline(file);
  const intervalMs = flags.batchInterval ? toMillis(flags.batchInterval) : pipeline.batchIntervalMs;
  const linesPerBatch =
    flags.linesPerBatch ?? Math.max(1, Math.round((recordsPerSecond * intervalMs) / 1000));
  process.exitCode = await runCommand(file, {
    ...flags,
    input: flags.input,
    cost: true,
    quiet: true,
    rate: recordsPerSecond,
    linesPerBatch,
  });
}

/** Which of a stack's batches `sluice cost --stack` prices: batch numbers or times, both ends in. */
interface CostRangeFlags {
  stack?: string;
  from?: BatchOrTime;
  to?: BatchOrTime;
}

/** A flag parser for one end of a range of batches: a batch number or a time. */
function batchOrTime(value: string): BatchOrTime {
  try {
    return parseBatchOrTime(value);
  } catch (error) {
    if (error instanceof RangeError) throw new InvalidArgumentError(`${error.message}.`);
    throw error;
  }
}

/** Progress records `sluice cost --stack` reads at once. */
const PROGRESS_READS_AT_ONCE = 32;

/**
 * A batch's progress record, or a quiet batch's progress from its ledger item (it has no record),
 * or nothing: a quiet batch whose item has expired cannot be priced.
 */
async function stackProgress(ctx: RuntimeContext, batch: BatchId): Promise<BatchProgress | undefined> {
  const record = await readProgress(ctx, batch);
  if (record) return record;
  const item = await ctx.ledger.batches.get(batch);
  return item?.quietUntil === undefined ? undefined : quietProgress(ctx, item);
}

/** `sluice cost --stack`: a deployed pipeline's batches in a range, priced from their progress records. */
async function stackCostCommand(
  file: string,
  flags: CostRangeFlags & { stack: string; rate?: number; prices?: string; region?: string; json?: boolean },
): Promise<void> {
  const prices = choosePricesOrExplain(flags);
  const pipeline = loadPipeline(file);
  const deployed = await openStack(pipeline, flags.stack);
  try {
    const { ctx, resources, clients } = deployed;
    // The range from the last sealed batch and the sealed manifests' times, and the progress records
    // in the bucket: the ledger's batch items expire long before the records do.
    const last = (await ctx.ledger.pipeline.get())?.lastSealed ?? 0;
    const range = await batchRange(last, sealedBatchTimes(ctx.objects), flags.from, flags.to);
    const inRange: number[] = [];
    for (let batch = Math.max(range.from, 1); batch <= Math.min(range.to, last); batch++) inRange.push(batch);
    const priced: BatchProgress[] = [];
    for (let i = 0; i < inRange.length; i += PROGRESS_READS_AT_ONCE) {
      const read = await Promise.all(
        inRange.slice(i, i + PROGRESS_READS_AT_ONCE).map((batch) => stackProgress(ctx, batchId(batch))),
      );
      priced.push(...read.filter((record): record is BatchProgress => record !== undefined));
    }
    let shards = 0;
    for (const stream of Object.values(resources.streams)) {
      const out = await clients.kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
      shards += out.StreamDescriptionSummary?.OpenShardCount ?? 0;
    }
    const report = stackCostReport({
      stack: deployed.stack,
      pipeline: pipeline.name,
      batches: priced,
      unpriced: inRange.length - priced.length,
      span: {
        batchIntervalMs: pipeline.batchIntervalMs,
        memory: resources.memoryMb,
        coordinatorTimeoutMs: resources.coordinatorTimeoutMs,
        ...(resources.coordinatorWaits === false ? { coordinatorWaits: false } : {}),
        shards,
      },
      ...(flags.rate === undefined ? {} : { recordsPerSecond: flags.rate }),
      prices,
    });
    process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : formatStackCostReport(report));
  } finally {
    deployed.close();
  }
}

/** Serves the page until Ctrl-C. */
async function serveUntilInterrupted(source: UiSource, port: number, what: string): Promise<void> {
  const ui = await startUi(source, { port });
  process.stderr.write(`sluice: streaming page of ${what} at ${ui.url} until Ctrl-C\n`);
  await new Promise<void>((resolve) => process.once('SIGINT', resolve));
  await ui.close();
}

/** `sluice ui`: the page of a run another process drives, or of a deployed stack. */
async function uiCommand(
  file: string,
  flags: { run?: string; stack?: string; uiPort: number },
): Promise<void> {
  await withTarget(file, flags, 'sluice ui', (target) =>
    serveUntilInterrupted(contextSource(target.ctx), flags.uiPort, target.where),
  );
}

/** What an operator's command prints: JSON, or text for a person. */
function print(json: boolean | undefined, value: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : text);
}

/**
 * Opens the run or stack a command names, does `work` with it, and closes it. Only an operator's
 * command opens a stack `operate` (able to start tasks); the others read.
 */
async function withTarget<R>(
  file: string,
  flags: TargetFlags,
  command: string,
  work: (target: OperatedPipeline) => Promise<R>,
  operate = false,
): Promise<R> {
  const target = await openTarget(loadPipeline(file), flags, command, { operate });
  try {
    return await work(target);
  } finally {
    await target.close();
  }
}

/** `sluice status`: how far a run or deployed pipeline is, what waits and what failed. */
async function statusCommand(file: string, flags: TargetFlags & { json?: boolean }): Promise<void> {
  await withTarget(file, flags, 'sluice status', async (target) => {
    const status = await pipelineStatus(target.ctx, Date.now());
    print(flags.json, status, formatStatus(status, target.where));
  });
}

/** `sluice batches list`: the batches, newest last. */
async function batchesListCommand(
  file: string,
  flags: TargetFlags & { json?: boolean; last?: number },
): Promise<void> {
  await withTarget(file, flags, 'sluice batches list', async (target) => {
    const all = await contextSource(target.ctx).batches();
    const shown = flags.last === undefined ? all : all.slice(-flags.last);
    print(flags.json, shown, formatBatches(shown));
  });
}

/** `sluice batches show`: one batch, its phases, state, cost and a sample of its dead letters. */
async function batchesShowCommand(
  file: string,
  batch: number,
  flags: TargetFlags & { json?: boolean },
): Promise<void> {
  await withTarget(file, flags, 'sluice batches show', async (target) => {
    const detail = await contextSource(target.ctx).batch(batchId(batch));
    if (!detail) throw new UsageError(`batch ${batch} is not sealed`, 'see sluice batches list');
    print(flags.json, detail, formatBatchDetail(detail));
  });
}

/** The operator's commands: `pause`, `resume`, `batches retry`, `batches skip`. */
async function operatorCommand(
  file: string,
  flags: TargetFlags & { json?: boolean },
  name: string,
  command: OperatorCommand,
): Promise<void> {
  await withTarget(
    file,
    flags,
    name,
    async (target) => {
      const result = await target.command(command);
      print(flags.json, result, `${target.where}: ${result.message}\n`);
    },
    true,
  );
}

/** What `sluice replay` is told. */
interface ReplayFlags extends TargetFlags {
  from: BatchOrTime;
  to?: BatchOrTime;
  outputPrefix: string;
  json?: boolean;
  batchInterval?: Duration;
  concurrency: number;
}

/**
 * `sluice replay`: sealed batches re-run with this code on the embedded emulator, their output
 * written under another prefix. Each batch is said as it ends (warm-up batches aside, on standard
 * error), then the totals; a failed batch makes the exit status 1.
 */
async function replayCommand(file: string, flags: ReplayFlags): Promise<void> {
  // Ctrl-C: stop after the batch that runs, so that the emulator's data is removed.
  const stopping = new AbortController();
  const interrupt = (): void => {
    process.stderr.write('sluice: interrupted: stopping after the batch that runs\n');
    stopping.abort();
  };
  process.once('SIGINT', interrupt);
  const report = await replay(loadPipeline(file), {
    ...(flags.run === undefined ? {} : { run: flags.run }),
    ...(flags.stack === undefined ? {} : { stack: flags.stack }),
    from: flags.from,
    ...(flags.to === undefined ? {} : { to: flags.to }),
    outputPrefix: flags.outputPrefix,
    ...(flags.batchInterval === undefined ? {} : { settings: { batchInterval: flags.batchInterval } }),
    concurrency: flags.concurrency,
    onBatch: (batch) => {
      if (batch.warmUp && batch.status !== 'failed')
        process.stderr.write(`sluice: ${formatReplayedBatch(batch)}`);
      else if (flags.json) process.stdout.write(`${JSON.stringify(batch)}\n`);
      else process.stdout.write(formatReplayedBatch(batch));
    },
    signal: stopping.signal,
  }).finally(() => process.off('SIGINT', interrupt));
  print(flags.json, report, formatReplayReport(report));
  if (report.failed) {
    process.stderr.write(
      `sluice: batch ${report.failed.batch} failed in the replay: ${report.failed.message}\n`,
    );
    process.exitCode = 1;
  }
}

/** `--run` and `--stack`: which pipeline an operator's command is for. */
function targetOptions(command: Command): Command {
  return command
    .argument('<pipeline>', 'the pipeline module the run or stack runs')
    .option('--run <name>', 'a named run on AWS_ENDPOINT_URL (sluice local run --run <name>)', runName)
    .option('--stack <name>', 'a deployed stack (AWS credentials and region as the SDK finds them)');
}

/** `sluice init`: writes the project and says what to run next. */
function initCommand(dir: string, flags: { sluice?: string }): void {
  const project = initProject(dir, flags.sluice === undefined ? {} : { sluice: flags.sluice });
  const where = path.relative(process.cwd(), project.dir) || '.';
  process.stdout.write(
    `Created ${project.name} in ${where}: pipeline '${project.pipelineName}', ${project.files.length} files.\n\n` +
      `  cd ${where}\n  npm install\n  npx sluice local run src/pipeline.ts --input sample.txt\n  npm test\n`,
  );
}

/** The pricing options `local run --cost` and `cost` share. */
function costOptions(command: Command): Command {
  return command
    .option(
      '--rate <records/s>',
      'the rate to project a month at: 1000, 1000/s or 60000/min (default 1000/s)',
      rate,
    )
    .option('--region <region>', 'list prices of this region (built in: us-east-1)')
    .option('--prices <file>', 'a JSON price table instead of the built-in one')
    .option(
      '--no-coordinator-waits',
      "run and price a coordinator that does not wait for batch boundaries (the construct's coordinatorWaits: false): ingest wakes one after each boundary, and a system-clock run ticks once a minute",
    );
}

/** The `sluice` command line. */
export function buildProgram(): Command {
  const program = new Command('sluice')
    .description('Serverless micro-batch stream processing: start a project, run pipelines locally')
    // main() reports commander's errors, as it does every other.
    .configureOutput({ outputError: () => {} });
  usageErrors(program, 'sluice');
  usageErrors(program.command('init'), 'sluice init')
    .description('scaffold a project: a pipeline, its test, a CDK app (installs nothing)')
    .argument('<dir>', 'folder to create (or an empty one)')
    .option('--sluice <spec>', 'how package.json depends on sluice (a range, a tarball or a folder)')
    .action(initCommand);
  const local = usageErrors(
    program.command('local').description('run on the embedded emulator, LocalStack, or AWS_ENDPOINT_URL'),
    'sluice local',
  );
  const run = usageErrors(local.command('run'), 'sluice local run')
    .description('run a pipeline over lines from a file or standard input, printing each batch')
    .argument('<pipeline>', 'the pipeline module (its default export is a pipeline)')
    .requiredOption(
      '-i, --input <file|->',
      "input lines, one record each (their bytes as they are; LF or CRLF ends a line); '-' reads standard input",
    )
    .option(
      '--json',
      "print one JSON object per batch output, {batch, time, stage, partition, records}, then one with the batch's progress, {batch, time, progress}",
    )
    .option(
      '--shards <n>',
      'Kinesis shards',
      wholeNumber(1, 500, " (Kinesis's default shard quota in us-east-1)"),
      2,
    )
    .option('--partitions <n>', "reduce partitions (default: the pipeline's)", wholeNumber(1, 10_000))
    .option('--tasks <n>', 'transform tasks per batch (default: by input bytes)', positiveInt)
    .option('--batch-interval <duration>', "batch interval, e.g. '2s' (default: the pipeline's)", duration)
    .option(
      '--lines-per-batch <n>',
      'put exactly n lines in each batch, empty lines included, on a simulated clock (repeatable runs)',
      positiveInt,
    )
    .addOption(
      new Option(
        '--faults <list>',
        "inject faults: 'duplicate' (every invocation twice), 'crash=<p>' (random crashes), 'latency=<ms>' (a slow endpoint)",
      ).argParser(faultList),
    )
    .option('--seed <n>', 'seed of the fault dice', positiveInt)
    .option('--top <n>', 'records shown per batch', positiveInt, 10)
    .option('--concurrency <n>', 'invocations at once', positiveInt, 8)
    .option(
      '--run <name>',
      'a named run on a long-running endpoint (AWS_ENDPOINT_URL): run again with the same name to continue it',
      runName,
    )
    .option('--cost', 'price the run at list prices and project a month of it (see sluice cost)')
    .option(
      '--ui',
      'serve the streaming page (batch timeline, drill-down) while the run goes on, and after it until Ctrl-C',
    )
    .option(
      '--ui-port <port>',
      'port of the streaming page (0: any free port)',
      wholeNumber(0, 65_535),
      4040,
    );
  costOptions(run).action(async (file: string, flags: RunFlags) => {
    process.exitCode = await runCommand(file, flags);
  });
  const cost = usageErrors(program.command('cost'), 'sluice cost')
    .description(
      'what a pipeline costs: a run on the embedded emulator in batches of the size --rate gives, priced, and a month projected beside the per-record pattern and Managed Flink',
    )
    .argument('<pipeline>', 'the pipeline module (its default export is a pipeline)')
    .option('-i, --input <file|->', "sample input lines, one record each; '-' reads standard input")
    .option(
      '--stack <name>',
      'price a deployed stack instead: its batches, from their progress records (AWS credentials and region as the SDK finds them)',
    )
    .option('--from <batch|time>', 'with --stack: the first batch priced, by number or time', batchOrTime)
    .option('--to <batch|time>', 'with --stack: the last batch priced, by number or time', batchOrTime)
    .option('--json', 'print the report as one JSON object')
    .option('--shards <n>', 'Kinesis shards', wholeNumber(1, 500), 2)
    .option('--partitions <n>', "reduce partitions (default: the pipeline's)", wholeNumber(1, 10_000))
    .option('--batch-interval <duration>', "batch interval (default: the pipeline's)", duration)
    .option('--lines-per-batch <n>', 'lines per batch (default: rate x batch interval)', positiveInt)
    .option('--top <n>', 'records shown per batch', positiveInt, 10)
    .option('--concurrency <n>', 'invocations at once', positiveInt, 8);
  costOptions(cost).action(costCommand);
  usageErrors(program.command('ui'), 'sluice ui')
    .description(
      'serve the streaming page of a named run on a long-running endpoint (AWS_ENDPOINT_URL: sluice local serve, LocalStack) or of a deployed stack, live, until Ctrl-C',
    )
    .argument('<pipeline>', 'the pipeline module the run or stack runs')
    .option('--run <name>', 'a named run (sluice local run --run <name>)', runName)
    .option('--stack <name>', 'a deployed stack (AWS credentials and region as the SDK finds them)')
    .option('--ui-port <port>', 'port of the page (0: any free port)', wholeNumber(0, 65_535), 4040)
    .action(uiCommand);
  targetOptions(usageErrors(program.command('status'), 'sluice status'))
    .description(
      'how far a named run or a deployed pipeline is: batches sealed and completed, delay, waiting input, failures',
    )
    .option('--json', 'print the status as one JSON object')
    .action(statusCommand);
  targetOptions(usageErrors(program.command('pause'), 'sluice pause'))
    .description('stop sealing batches (ingest goes on; sealed batches finish) until sluice resume')
    .option('--reason <text>', 'why, shown by sluice status', 'paused by the operator')
    .option('--json', 'print the result as one JSON object')
    .action((file: string, flags: TargetFlags & { reason: string; json?: boolean }) =>
      operatorCommand(file, flags, 'sluice pause', { kind: 'pause', reason: flags.reason }),
    );
  targetOptions(usageErrors(program.command('resume'), 'sluice resume'))
    .description(
      'seal again: the batches due take the backlog within maxRecordsPerBatch and maxBytesPerBatch',
    )
    .option('--json', 'print the result as one JSON object')
    .action((file: string, flags: TargetFlags & { json?: boolean }) =>
      operatorCommand(file, flags, 'sluice resume', { kind: 'resume' }),
    );
  const batches = usageErrors(
    program
      .command('batches')
      .description("a named run's or a deployed pipeline's batches: list, show, retry, skip"),
    'sluice batches',
  );
  targetOptions(usageErrors(batches.command('list'), 'sluice batches list'))
    .description('the batches, newest last, with their figures')
    .option('--last <n>', 'only the newest n', positiveInt)
    .option('--json', 'print the batches as one JSON array')
    .action(batchesListCommand);
  targetOptions(usageErrors(batches.command('show'), 'sluice batches show'))
    .argument('<batch>', 'the batch number', positiveInt)
    .description('one batch: phases, tasks, state, cost, dead letters')
    .option('--json', 'print the batch as one JSON object')
    .action(batchesShowCommand);
  targetOptions(usageErrors(batches.command('retry'), 'sluice batches retry'))
    .argument('<batch>', 'the failed batch', positiveInt)
    .description('run a failed batch again (after a fix): its missing tasks start again')
    .option('--json', 'print the result as one JSON object')
    .action((file: string, batch: number, flags: TargetFlags & { json?: boolean }) =>
      operatorCommand(file, flags, 'sluice batches retry', { kind: 'retry', batch: batchId(batch) }),
    );
  targetOptions(usageErrors(batches.command('skip'), 'sluice batches skip'))
    .argument('<batch>', 'the failed batch', positiveInt)
    .description('give a failed batch up: its input goes to dead-letter/skipped/, state moves past it')
    .option('--reason <text>', 'why, kept with the dead letter', 'skipped by the operator')
    .option('--json', 'print the result as one JSON object')
    .action((file: string, batch: number, flags: TargetFlags & { reason: string; json?: boolean }) =>
      operatorCommand(file, flags, 'sluice batches skip', {
        kind: 'skip',
        batch: batchId(batch),
        reason: flags.reason,
      }),
    );
  targetOptions(usageErrors(program.command('replay'), 'sluice replay'))
    .description(
      "re-run sealed batches with this code from the pipeline's bucket (its manifests and segments, not the stream) on the embedded emulator, writing their output under another prefix of the bucket",
    )
    .requiredOption(
      '--from <batch|time>',
      'the first batch written: a batch number, or a time (ISO or epoch ms) whose batch ends then or later',
      batchOrTime,
    )
    .option(
      '--to <batch|time>',
      'the last batch written, by number or time (default: the last sealed batch)',
      batchOrTime,
    )
    .requiredOption(
      '--output-prefix <prefix>',
      "where in the pipeline's bucket the batches' output and dead letters go (apart from its own prefixes)",
    )
    .option('--json', 'print one JSON object per replayed batch, then one with the totals')
    .option(
      '--batch-interval <duration>',
      'batch interval, when the run was started with --batch-interval',
      duration,
    )
    .option('--concurrency <n>', 'invocations at once', positiveInt, 8)
    .action(replayCommand);
  usageErrors(local.command('serve'), 'sluice local serve')
    .description('run the emulator as a long-lived endpoint, like LocalStack')
    .option('-p, --port <port>', 'port (0: any free port)', wholeNumber(0, 65_535), 4566)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--data-dir <dir>', 'keep data in this directory across restarts')
    .action(serveCommand);
  return program;
}

/**
 * What the person who ran the command is told of the error that ended it. Mistakes they can fix
 * say what is wrong and what to do; anything else names the error, with its stack on request.
 */
function explain(error: unknown, debug: boolean): string {
  if (error instanceof PipelineLoadError || error instanceof InitError) return `sluice: ${error.message}\n`;
  if (error instanceof UsageError || error instanceof SluiceError) {
    return `sluice: ${error.message}\n  ${error.hint}\n`;
  }
  if (!(error instanceof Error)) return `sluice: ${String(error)}\n`;
  const head = `sluice: ${error.name}: ${error.message}\n`;
  if (!debug) return `${head}  set SLUICE_DEBUG=1 to see where it happened\n`;
  const frames = (error.stack ?? '').split('\n').filter((line) => /^\s+at /.test(line));
  return `${head}${frames.map((frame) => `${frame}\n`).join('')}`;
}

/** Runs the CLI with the process arguments. */
export async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError && HELP_EXITS.has(error.code)) {
      process.exitCode = error.exitCode;
      return;
    }
    const debug = process.env.SLUICE_DEBUG !== undefined && !['', '0'].includes(process.env.SLUICE_DEBUG);
    process.stderr.write(explain(error, debug));
    process.exitCode = 2;
  }
}

if (require.main === module) void main();
