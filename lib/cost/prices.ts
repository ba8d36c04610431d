import * as z from 'zod/mini';

/**
 * List prices, in US dollars, of what a pipeline uses. On-demand DynamoDB, Lambda on arm64,
 * S3 Standard requests, Kinesis Data Streams provisioned mode.
 */
export interface PriceTable {
  readonly region: string;
  readonly lambda: {
    /** Per million requests (invocations). */
    readonly requestsPerMillion: number;
    /** Per GB-second of arm64 duration (memory in GB times seconds). */
    readonly gbSecond: number;
  };
  readonly s3: {
    /** PUT, COPY, POST and LIST requests, per thousand. */
    readonly writesPerThousand: number;
    /** GET and all other requests, per thousand. */
    readonly readsPerThousand: number;
  };
  readonly dynamodb: {
    readonly writeUnitsPerMillion: number;
    readonly readUnitsPerMillion: number;
  };
  readonly kinesis: {
    readonly shardHour: number;
    /** PUT payload units (25 KB each), per million. */
    readonly putUnitsPerMillion: number;
  };
  readonly scheduler: {
    /** EventBridge Scheduler invocations, per million. */
    readonly invocationsPerMillion: number;
  };
  readonly flink: {
    /** Managed Service for Apache Flink, per KPU-hour. */
    readonly kpuHour: number;
    /** Running application storage, per GB-month (50 GB per KPU). */
    readonly storageGbMonth: number;
  };
}

/**
 * us-east-1 list prices (checked December 2026), the default of `sluice cost`.
 *
 * @example
 * US_EAST_1.dynamodb.writeUnitsPerMillion; // 0.625
 */
export const US_EAST_1: PriceTable = Object.freeze({
  region: 'us-east-1',
  lambda: Object.freeze({ requestsPerMillion: 0.2, gbSecond: 0.0000133334 }),
  s3: Object.freeze({ writesPerThousand: 0.005, readsPerThousand: 0.0004 }),
  dynamodb: Object.freeze({ writeUnitsPerMillion: 0.625, readUnitsPerMillion: 0.125 }),
  kinesis: Object.freeze({ shardHour: 0.015, putUnitsPerMillion: 0.014 }),
  scheduler: Object.freeze({ invocationsPerMillion: 1 }),
  flink: Object.freeze({ kpuHour: 0.11, storageGbMonth: 0.1 }),
});

/** The schema of a price table, built when a table is read (not when the runtime loads). */
function priceTableSchema() {
  const price = z.number().check(z.gte(0));
  return z.object({
    region: z.string().check(z.minLength(1)),
    lambda: z.object({ requestsPerMillion: price, gbSecond: price }),
    s3: z.object({ writesPerThousand: price, readsPerThousand: price }),
    dynamodb: z.object({ writeUnitsPerMillion: price, readUnitsPerMillion: price }),
    kinesis: z.object({ shardHour: price, putUnitsPerMillion: price }),
    scheduler: z.object({ invocationsPerMillion: price }),
    flink: z.object({ kpuHour: price, storageGbMonth: price }),
  });
}

/**
 * Reads a price table (a region's prices, or negotiated ones) from parsed JSON shaped as
 * {@link US_EAST_1}; every price is required.
 *
 * @example
 * const prices = parsePriceTable(JSON.parse(readFileSync('eu-west-1.json', 'utf8')));
 */
export function parsePriceTable(value: unknown): PriceTable {
  const parsed = priceTableSchema().safeParse(value);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join('.') || '(top)'}: ${issue.message}`,
    );
    throw new Error(`not a price table: ${problems.join('; ')}`);
  }
  return parsed.data;
}
