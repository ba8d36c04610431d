import { readFileSync } from 'node:fs';
import {
  flinkMonth,
  perRecordMonth,
  PER_RECORD_PATTERN,
  priceBatches,
  priceRun,
  projectBatches,
  projectMonth,
  type Bill,
  type DeployedSpan,
  type PricedBatch,
  type Projection,
  type ProjectionInput,
} from '../lib/cost/model';
import { parsePriceTable, US_EAST_1, type PriceTable } from '../lib/cost/prices';
import type { Usage } from '../lib/cost/usage';

/** A price table chosen on the command line: a file, or the built-in table of a region. */
export function choosePrices(options: { prices?: string; region?: string }): PriceTable {
  if (options.prices !== undefined) {
    return parsePriceTable(JSON.parse(readFileSync(options.prices, 'utf8')) as unknown);
  }
  const region = options.region ?? US_EAST_1.region;
  if (region !== US_EAST_1.region) {
    throw new Error(
      `no built-in prices for ${region} (only ${US_EAST_1.region}); pass --prices <file>, a JSON price table shaped as the built-in one`,
    );
  }
  return US_EAST_1;
}

/**
 * Reads a rate: records per second (`1000`, `1000/s`), per minute (`60000/min`) or per hour
 * (`3.6e6/h`).
 */
export function parseRate(value: string): number {
  const match = /^(\d+(?:\.\d+)?(?:e\d+)?)(?:\/(s|min|h))?$/.exec(value.trim());
  if (!match)
    throw new Error(`'${value}' is not a rate: write records per second as 1000 or 1000/s, or 60000/min`);
  const per = { s: 1, min: 60, h: 3600 }[match[2] ?? 's'] ?? 1;
  return Number(match[1]) / per;
}

/** What `sluice cost` reports: the run priced, and a month projected at a rate beside the alternatives. */
export interface CostReport {
  readonly kind: 'sluice.cost@1';
  readonly region: string;
  readonly run: {
    readonly batches: number;
    readonly records: number;
    readonly bill: Bill;
    readonly perBatch: number;
    readonly perMillionRecords: number;
    readonly usage: Usage;
  };
  readonly projection: Projection & { readonly recordsPerSecond: number };
  readonly alternatives: {
    readonly perRecord: Bill & { readonly beyondKinesis: number };
    readonly flink: Bill;
  };
}

/** Prices a metered run and projects a month of it at `recordsPerSecond`. */
export function costReport(input: ProjectionInput & { readonly prices: PriceTable }): CostReport {
  const { prices } = input;
  const bill = priceRun(input.usage, prices, input.memory);
  const projection = projectMonth(input, prices);
  const perRecord = perRecordMonth(input.recordsPerSecond, input.shards, prices);
  return {
    kind: 'sluice.cost@1',
    region: prices.region,
    run: {
      batches: input.batches,
      records: input.records,
      bill,
      perBatch: input.batches > 0 ? bill.total / input.batches : 0,
      perMillionRecords: input.records > 0 ? bill.total / (input.records / 1e6) : 0,
      usage: input.usage,
    },
    projection: { ...projection, recordsPerSecond: input.recordsPerSecond },
    alternatives: {
      perRecord: { ...perRecord, beyondKinesis: perRecord.total - (perRecord.byService.kinesis ?? 0) },
      flink: flinkMonth(prices),
    },
  };
}

const dollars = (value: number): string =>
  value >= 100 ? `$${value.toFixed(0)}` : value >= 1 ? `$${value.toFixed(2)}` : `$${value.toPrecision(3)}`;

const quantity = (value: number): string =>
  value >= 1000 ? Math.round(value).toLocaleString('en-US') : Number(value.toPrecision(4)).toString();

function table(bill: Bill): string {
  const rows = bill.lines
    .filter((line) => line.quantity > 0)
    .map(
      (line) =>
        `  ${`${line.service} ${line.item}`.padEnd(32)}${quantity(line.quantity).padStart(16)}${dollars(line.dollars).padStart(12)}`,
    );
  return `${rows.join('\n')}\n  ${'total'.padEnd(48)}${dollars(bill.total).padStart(12)}\n`;
}

/** A projected month's summary line, then the same rate under sluice and the two alternatives. */
function monthAndAlternatives(
  projection: CostReport['projection'],
  alternatives: CostReport['alternatives'],
): string[] {
  return [
    `  per hour ${dollars(projection.month.total / 730)}, per million records ${dollars(projection.perMillionRecords)}, beyond Kinesis ${dollars(projection.beyondKinesis)}`,
    '',
    `The same ${quantity(projection.recordsPerSecond)} records/s, a month, beyond Kinesis:`,
    `  sluice                                            ${dollars(projection.beyondKinesis).padStart(10)}`,
    `  Lambda + one DynamoDB UpdateItem per record       ${dollars(alternatives.perRecord.beyondKinesis).padStart(10)}`,
    `    (${PER_RECORD_PATTERN.recordsPerInvocation} records per invocation, ${PER_RECORD_PATTERN.invocationSeconds * 1000} ms at ${PER_RECORD_PATTERN.memoryMb} MiB, 1 write unit per record)`,
    `  Managed Service for Apache Flink, smallest (2 KPU) ${dollars(alternatives.flink.total).padStart(9)}`,
    '',
  ];
}

/** The report as text for a person. */
export function formatCostReport(report: CostReport): string {
  const { run, projection, alternatives } = report;
  const rate = quantity(projection.recordsPerSecond);
  return [
    `This run, at ${report.region} list prices: ${run.batches} batches, ${quantity(run.records)} records`,
    table(run.bill),
    `  per batch ${dollars(run.perBatch)}, per million records ${dollars(run.perMillionRecords)}`,
    '',
    `A month deployed at ${rate} records/s (${quantity(projection.recordsPerMonth)} records), projected from this run:`,
    table(projection.month),
    ...monthAndAlternatives(projection, alternatives),
  ].join('\n');
}

/** What `sluice cost --stack` reports: a deployed pipeline's batches over a span, priced, and a month projected. */
export interface StackCostReport {
  readonly kind: 'sluice.stack-cost@1';
  readonly region: string;
  readonly stack: string;
  readonly pipeline: string;
  /** The batch times of the first and last batch priced, epoch ms. */
  readonly from: number;
  readonly to: number;
  readonly hours: number;
  readonly batches: number;
  /** Batches in the span without a progress record (not complete, or written before there were any). */
  readonly unpriced: number;
  readonly records: number;
  readonly bill: Bill;
  readonly perBatch: number;
  readonly perHour: number;
  readonly perMillionRecords: number;
  readonly projection: Projection & { readonly recordsPerSecond: number };
  readonly alternatives: CostReport['alternatives'];
}

/**
 * Prices a deployed pipeline's batches (their progress records) over their span, and projects a
 * month at `recordsPerSecond` (by default the span's own rate).
 */
export function stackCostReport(input: {
  readonly stack: string;
  readonly pipeline: string;
  readonly batches: readonly (PricedBatch & { readonly time: number })[];
  readonly unpriced: number;
  readonly span: Omit<DeployedSpan, 'hours'>;
  readonly recordsPerSecond?: number;
  readonly prices: PriceTable;
}): StackCostReport {
  const { batches, prices } = input;
  const times = batches.map((b) => b.time);
  const from = times.length > 0 ? Math.min(...times) : 0;
  const to = times.length > 0 ? Math.max(...times) : 0;
  // Batch n covers the interval before its time: the span runs from the first one's start.
  const hours = batches.length > 0 ? (to - from + input.span.batchIntervalMs) / 3_600_000 : 0;
  const span: DeployedSpan = { ...input.span, hours };
  const bill = priceBatches(batches, span, prices);
  const records = batches.reduce((sum, b) => sum + b.inputRecords, 0);
  const recordsPerSecond = input.recordsPerSecond ?? (hours > 0 ? records / (hours * 3600) : 0);
  const projection = projectBatches(batches, span, recordsPerSecond, prices);
  const perRecord = perRecordMonth(recordsPerSecond, input.span.shards, prices);
  return {
    kind: 'sluice.stack-cost@1',
    region: prices.region,
    stack: input.stack,
    pipeline: input.pipeline,
    from,
    to,
    hours,
    batches: batches.length,
    unpriced: input.unpriced,
    records,
    bill,
    perBatch: batches.length > 0 ? bill.total / batches.length : 0,
    perHour: hours > 0 ? bill.total / hours : 0,
    perMillionRecords: records > 0 ? bill.total / (records / 1e6) : 0,
    projection: { ...projection, recordsPerSecond },
    alternatives: {
      perRecord: { ...perRecord, beyondKinesis: perRecord.total - (perRecord.byService.kinesis ?? 0) },
      flink: flinkMonth(prices),
    },
  };
}

/** The stack's report as text for a person. */
export function formatStackCostReport(report: StackCostReport): string {
  const { projection, alternatives } = report;
  const rate = quantity(projection.recordsPerSecond);
  const when = (ms: number): string => new Date(ms).toISOString();
  return [
    `Stack ${report.stack}, pipeline ${report.pipeline}, at ${report.region} list prices:`,
    `  ${report.batches} batches (${when(report.from)} to ${when(report.to)}, ${quantity(report.hours)} h), ${quantity(report.records)} records` +
      (report.unpriced > 0 ? `; ${report.unpriced} batches without a progress record left out` : ''),
    table(report.bill),
    `  per batch ${dollars(report.perBatch)}, per hour ${dollars(report.perHour)}, per million records ${dollars(report.perMillionRecords)}`,
    '',
    `A month at ${rate} records/s (${quantity(projection.recordsPerMonth)} records), from these batches:`,
    table(projection.month),
    ...monthAndAlternatives(projection, alternatives),
  ].join('\n');
}
