import { describe, expect, it } from 'vitest';
import {
  coordinatorSeconds,
  flinkMonth,
  MONTH_SECONDS,
  perRecordMonth,
  priceBatches,
  priceRun,
  projectBatches,
  projectMonth,
} from '../../lib/cost/model';
import { parsePriceTable, US_EAST_1 } from '../../lib/cost/prices';
import type { Usage } from '../../lib/cost/usage';
import { operationOf } from '../../lib/cost/usage';
import { DEFAULT_MEMORY_MB } from '../../lib/deployment';
import { parseRate } from '../../local/cost-report';

const op = (
  requests: number,
  units: Partial<{ readUnits: number; writeUnits: number; putUnits: number }> = {},
) => ({
  requests,
  readUnits: units.readUnits ?? 0,
  writeUnits: units.writeUnits ?? 0,
  putUnits: units.putUnits ?? 0,
});

/** A run of one batch: a transform task, two reduce tasks, one ingest call, one coordinator pass. */
const USAGE: Usage = {
  functions: {
    ingest: {
      invocations: 1,
      durationMs: 200,
      operations: { 's3:PutObject': op(1), 'dynamodb:PutItem': op(2, { writeUnits: 2 }) },
    },
    coordinator: {
      invocations: 1,
      durationMs: 100,
      operations: { 's3:PutObject': op(1), 'dynamodb:Query': op(2, { readUnits: 1 }) },
    },
    transform: {
      invocations: 1,
      durationMs: 1000,
      operations: { 's3:GetObject': op(3), 's3:PutObject': op(1) },
    },
    reduce: {
      invocations: 2,
      durationMs: 2000,
      operations: {
        's3:GetObject': op(2),
        'dynamodb:UpdateItem': op(4, { writeUnits: 6 }),
        's3:DeleteObject': op(5),
      },
    },
  },
  outside: { 'kinesis:PutRecords': op(1, { putUnits: 1000 }), 'dynamodb:GetItem': op(9, { readUnits: 9 }) },
};

/** USAGE's one batch of 1,000 records, projected at 100 records/s in 10 s batches on two shards. */
const AT_100 = {
  usage: USAGE,
  batches: 1,
  records: 1000,
  recordsPerSecond: 100,
  batchIntervalMs: 10_000,
  shards: 2,
  memory: DEFAULT_MEMORY_MB,
};

describe('priceRun', () => {
  it('prices invocations, requests and units at list prices', () => {
    // Act
    const bill = priceRun(USAGE, US_EAST_1, DEFAULT_MEMORY_MB);

    // Assert: recounted by hand from USAGE
    const gbSeconds = 0.2 * 0.5 + 0.1 * 0.25 + 1 * 1 + 2 * 1;
    const expected =
      (5 / 1e6) * 0.2 +
      gbSeconds * 0.0000133334 +
      (3 / 1000) * 0.005 + // PutObject: ingest, coordinator, transform; DeleteObject is free
      (5 / 1000) * 0.0004 +
      (8 / 1e6) * 0.625 +
      (1 / 1e6) * 0.125 + // the harness's own reads (outside) are not billed
      (1000 / 1e6) * 0.014;
    expect(bill.total).toBeCloseTo(expected, 12);
    expect(bill.byService.dynamodb).toBeCloseTo((8 / 1e6) * 0.625 + (1 / 1e6) * 0.125, 12);
  });
});

describe('projectMonth', () => {
  it('scales tasks by batches, ingest by shard windows (the batch interval), and adds the deployed coordinator', () => {
    // Act
    const projection = projectMonth(AT_100, US_EAST_1);

    // Assert
    const batches = MONTH_SECONDS / 10;
    // Two shards, each called once per 10 s window.
    const ingestCalls = (2 / 10) * MONTH_SECONDS;
    const ticks = MONTH_SECONDS / 60;
    const lambdaRequests = projection.month.lines.find((l) => l.item === 'requests')?.quantity;
    expect(lambdaRequests).toBeCloseTo(3 * batches + ingestCalls + ticks, 3);
    const s3Writes = projection.month.lines.find((l) => l.item === 'PUT and LIST requests')?.quantity;
    // A transform PUT and a coordinator PUT (the manifest) per batch, a segment per ingest call.
    expect(s3Writes).toBeCloseTo(2 * batches + ingestCalls, 3);
    expect(projection.recordsPerMonth).toBe(100 * MONTH_SECONDS);
    expect(projection.beyondKinesis).toBeCloseTo(
      projection.month.total - (projection.month.byService.kinesis ?? 0),
      9,
    );
  });

  it('prices a coordinator that does not wait as a pass per tick and per batch, not a looping minute', () => {
    // Arrange
    const input = AT_100;

    // Act
    const waiting = projectMonth(input, US_EAST_1);
    const woken = projectMonth({ ...input, coordinatorWaits: false }, US_EAST_1);
    const idle = projectMonth({ ...input, recordsPerSecond: 0, coordinatorWaits: false }, US_EAST_1);

    // Assert: the run's pass is 100 ms at 256 MiB, with a PUT and two Queries (one read unit).
    const batches = MONTH_SECONDS / 10;
    const ticks = MONTH_SECONDS / 60;
    const gbSeconds = (p: typeof waiting) =>
      p.month.lines.find((l) => l.item === 'GB-seconds')?.quantity ?? 0;
    const requests = (p: typeof waiting) => p.month.lines.find((l) => l.item === 'requests')?.quantity ?? 0;
    expect(gbSeconds(waiting) - gbSeconds(woken)).toBeCloseTo(
      ticks * coordinatorSeconds(10_000, 80_000) * 0.25 - (ticks + batches) * 0.1 * 0.25,
      3,
    );
    // A woken invocation per batch; each tick's pass makes the pass's requests too.
    expect(requests(woken) - requests(waiting)).toBeCloseTo(batches, 3);
    const s3Writes = (p: typeof waiting) =>
      p.month.lines.find((l) => l.item === 'PUT and LIST requests')?.quantity ?? 0;
    expect(s3Writes(woken) - s3Writes(waiting)).toBeCloseTo(ticks, 3);
    expect(woken.beyondKinesis).toBeLessThan(waiting.beyondKinesis - 5);
    // Idle, it sleeps as a waiting one does: each tick seals the minute's batches.
    expect(idle.month.total).toBeCloseTo(
      projectMonth({ ...input, recordsPerSecond: 0 }, US_EAST_1).month.total,
      9,
    );
  });

  it('calls ingest no more often than records arrive', () => {
    // Act
    const slow = projectMonth(
      {
        usage: USAGE,
        batches: 1,
        records: 1000,
        recordsPerSecond: 0.02,
        batchIntervalMs: 60_000,
        shards: 4,
        memory: DEFAULT_MEMORY_MB,
      },
      US_EAST_1,
    );

    // Assert: a call every 50 s, not one per shard a minute
    const batches = MONTH_SECONDS / 60;
    const requests = slow.month.lines.find((l) => l.item === 'requests')?.quantity;
    expect(requests).toBeCloseTo(3 * batches + 0.02 * MONTH_SECONDS + MONTH_SECONDS / 60, 3);
  });

  it('calls ingest when a shard has a full call of records before its window ends, or as configured', () => {
    // Arrange
    const at = (recordsPerSecond: number, ingestWindowMs?: number) =>
      projectMonth(
        {
          usage: USAGE,
          batches: 1,
          records: 1000,
          recordsPerSecond,
          batchIntervalMs: 10_000,
          shards: 1,
          memory: DEFAULT_MEMORY_MB,
          ...(ingestWindowMs === undefined ? {} : { ingestWindowMs }),
        },
        US_EAST_1,
      );
    const ingestCalls = (projection: ReturnType<typeof projectMonth>) =>
      (projection.month.lines.find((l) => l.item === 'requests')?.quantity ?? 0) -
      3 * (MONTH_SECONDS / 10) -
      MONTH_SECONDS / 60;

    // Act
    const busy = at(5000);
    const configured = at(100, 1000);

    // Assert: 5,000 records a second fill a 10,000-record call every 2 s
    expect(ingestCalls(busy)).toBeCloseTo(0.5 * MONTH_SECONDS, 3);
    expect(ingestCalls(configured)).toBeCloseTo(MONTH_SECONDS, 3);
  });
});

describe('coordinatorSeconds', () => {
  it.each([
    [10_000, 80_000, 68],
    [1_000, 80_000, 72.5],
    [60_000, 80_000, 36.5],
    [300_000, 80_000, (73 / 300) * 36.5],
  ])('interval %i ms, timeout %i ms: %f s', (interval, timeout, seconds) => {
    expect(coordinatorSeconds(interval, timeout)).toBeCloseTo(seconds, 9);
  });
});

describe('the alternatives', () => {
  it('prices the per-record pattern mostly as one write unit per record', () => {
    // Act
    const month = perRecordMonth(1000, 2, US_EAST_1);

    // Assert: 2.628 billion records a month
    expect(month.byService.dynamodb).toBeCloseTo(2628 * 0.625, 6);
    expect(month.total).toBeGreaterThan(1650);
  });

  it('prices the smallest Managed Flink application at two KPU always on', () => {
    expect(flinkMonth(US_EAST_1).total).toBeCloseTo(2 * 730 * 0.11 + 50 * 0.1, 9);
  });
});

describe('inputs', () => {
  it.each([
    ['1000', 1000],
    ['1000/s', 1000],
    ['60000/min', 1000],
    ['3.6e6/h', 1000],
    ['0.5', 0.5],
  ])('reads the rate %s', (text, perSecond) => {
    expect(parseRate(text)).toBeCloseTo(perSecond, 9);
  });

  it('refuses what is not a rate', () => {
    expect(() => parseRate('fast')).toThrow(/not a rate/);
  });

  it('reads a price table and refuses one with a price missing', () => {
    expect(parsePriceTable(JSON.parse(JSON.stringify(US_EAST_1)))).toEqual(US_EAST_1);
    const { dynamodb: _dropped, ...partial } = US_EAST_1;
    expect(() => parsePriceTable({ ...partial })).toThrow(/not a price table: dynamodb/);
  });

  it('names operations as the service does', () => {
    expect(operationOf('dynamodb', 'UpdateCommand')).toBe('UpdateItem');
    expect(operationOf('dynamodb', 'PutItemCommand')).toBe('PutItem');
    expect(operationOf('dynamodb', 'QueryCommand')).toBe('Query');
    expect(operationOf('s3', 'PutObjectCommand')).toBe('PutObject');
  });
});

describe('priceBatches and projectBatches (a deployed stack, from progress records)', () => {
  const batch = {
    inputRecords: 1000,
    requests: { 's3:PutObject': 4, 's3:GetObject': 10, 'dynamodb:PutItem': 6 },
    readUnits: 20,
    writeUnits: 12,
    functions: {
      ingest: { invocations: 2, durationMs: 400 },
      coordinator: { invocations: 0, durationMs: 50 },
      transform: { invocations: 1, durationMs: 1000 },
      reduce: { invocations: 2, durationMs: 3000 },
    },
  };
  const span = {
    hours: 1,
    batchIntervalMs: 10_000,
    memory: { ingest: 512, coordinator: 256, transform: 2048, reduce: 1024 },
    coordinatorTimeoutMs: 80_000,
    shards: 2,
  };

  it('prices the batches at the deployed memory, and the coordinator, ticks and shards by the hour', () => {
    // Act
    const bill = priceBatches([batch, batch], span, US_EAST_1);

    // Assert: worked out by hand at us-east-1 list prices
    const ticks = 60;
    const gbSeconds = 2 * (0.4 * 0.5 + 1 * 2 + 3 * 1) + ticks * 68 * 0.25;
    const expected =
      ((2 * 5 + ticks) / 1e6) * 0.2 +
      gbSeconds * 0.0000133334 +
      (8 / 1000) * 0.005 +
      (20 / 1000) * 0.0004 +
      (24 / 1e6) * 0.625 +
      (40 / 1e6) * 0.125 +
      (2000 / 1e6) * 0.014 +
      (ticks / 1e6) * 1 +
      2 * 0.015;
    expect(bill.total).toBeCloseTo(expected, 12);
    expect(bill.lines.find((l) => l.item === 'GB-seconds')?.quantity).toBeCloseTo(gbSeconds, 9);
  });

  it('prices a coordinator that does not wait by its passes: each seal once, each tick as long as a seal', () => {
    // Arrange: seals of 40 and 60 ms, one batch without input.
    const sealed = [
      { ...batch, sealMs: 40 },
      { ...batch, sealMs: 60, inputRecords: 0 },
    ];
    const woken = { ...span, coordinatorWaits: false };

    // Act
    const bill = priceBatches(sealed, woken, US_EAST_1);
    const month = projectBatches(sealed, woken, 100, US_EAST_1);

    // Assert: both seals, once each, and the 60 ticks' passes of 50 ms (the mean seal) at 256 MiB.
    const gbSeconds = 2 * (0.4 * 0.5 + 1 * 2 + 3 * 1) + (0.1 + 60 * 0.05) * 0.25;
    expect(bill.lines.find((l) => l.item === 'GB-seconds')?.quantity).toBeCloseTo(gbSeconds, 9);
    expect(bill.lines.find((l) => l.item === 'requests')?.quantity).toBeCloseTo(2 * 5 + 60 + 1, 9);
    // The month's ticks are passes as long as these seals, not looping minutes.
    const hourly = priceBatches([], { ...woken, hours: 730, coordinatorPassMs: 50 }, US_EAST_1);
    expect(hourly.lines.find((l) => l.item === 'GB-seconds')?.quantity).toBeCloseTo(
      730 * 60 * 0.05 * 0.25,
      6,
    );
    expect(month.month.total).toBeLessThan(projectBatches(sealed, span, 100, US_EAST_1).month.total);
  });

  it('projects a month: the hourly part for 730 hours, the batches by the records at the rate', () => {
    // Act
    const month = projectBatches([batch], span, 100, US_EAST_1);

    // Assert
    const hourly = priceBatches([], { ...span, hours: 730 }, US_EAST_1).total;
    const perRecord = priceBatches([batch], { ...span, hours: 0, shards: 0 }, US_EAST_1).total / 1000;
    expect(month.month.total).toBeCloseTo(hourly + perRecord * 100 * MONTH_SECONDS, 6);
    expect(month.recordsPerMonth).toBe(100 * MONTH_SECONDS);
  });
});
