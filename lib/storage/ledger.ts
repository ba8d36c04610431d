import {
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { isConditionFailure } from './conditions';
import { InvalidInputError } from '../errors';
import type { BatchId, ShardId, TaskId } from '../ids';
import { padSeq } from '../encoding/segment';

/** Where a shard's input stands: the last segment taken into a sealed batch. */
export interface ShardCursor {
  /** Sort key of the last segment taken (its first sequence number, padded). */
  readonly segment: string;
  /** Last sequence number taken; records at or below it are never taken again. */
  readonly lastSeq: string;
}

/** Cursors of every shard, by shard id. */
export type Cursors = Readonly<Record<string, ShardCursor>>;

/** The pipeline's own ledger item: its zero time and how far sealing has gone. */
export interface PipelineItem {
  readonly zeroTime: number;
  readonly lastSealed: number;
  readonly cursors: Cursors;
  /** Event time folded in so far: the highest seen, through which batch (event-time pipelines). */
  readonly eventTime?: EventTimeMark;
}

/** The highest event time of batches 1..through. */
export interface EventTimeMark {
  readonly max: number | null;
  readonly through: number;
}

/** A segment as registered by the ingest function. */
export interface SegmentItem {
  readonly shard: ShardId;
  readonly firstSeq: string;
  readonly lastSeq: string;
  readonly key: string;
  readonly records: number;
  readonly bytes: number;
  /** Block offsets and record counts, in `formatBlocks` form. */
  readonly blocks: string;
}

/** Totals of a finished batch. */
export interface BatchSummary {
  readonly inputRecords: number;
  readonly deadLetters: number;
  readonly outputRecords: number;
  /** Output partitions that have an output object, in order. */
  readonly outputPartitions: readonly number[];
}

/** Batch status: `sealed` while it runs. */
export type BatchStatus = 'sealed' | 'complete' | 'failed';

/** The ledger item of one batch: what was sealed, and which tasks of which phases have reported. */
export interface BatchItem {
  readonly batch: BatchId;
  readonly time: number;
  readonly status: BatchStatus;
  readonly cursors: Cursors;
  readonly previousCursors: Cursors;
  readonly inputRecords: number;
  readonly inputBytes: number;
  /** Transform tasks of phase 0. */
  readonly tasks: number;
  readonly sealedAt: number;
  readonly updatedAt: number;
  readonly completedAt?: number;
  readonly summary?: BatchSummary;
  readonly failure?: { readonly message: string; readonly phase: number; readonly task: number };
  /** Event-time pipelines: the mark folded in when this batch was sealed (its watermark base). */
  readonly eventTime?: EventTimeMark;
  /** Event-time pipelines: this batch's own highest event time, once its event-time phase started. */
  readonly eventTimeMax?: number | null;
  /** done[p]: tasks of phase p that have reported. */
  readonly done: Readonly<Record<number, readonly number[]>>;
  /** withData[p]: partitions of phase p that some task of phase p-1 wrote data for. */
  readonly withData: Readonly<Record<number, readonly number[]>>;
  /** expected[p]: the tasks phase p was started with (p >= 1). */
  readonly expected: Readonly<Record<number, readonly number[]>>;
}

/** What a task reports once its outputs are written. */
export interface TaskReport {
  readonly batch: BatchId;
  readonly phase: number;
  readonly task: TaskId;
  /** The task's shuffle file, when the phase feeds another. */
  readonly shuffle?: string;
  /** Byte offsets of each next-phase partition's run: `index[p]..index[p+1]`. */
  readonly index?: readonly number[];
  readonly withData: readonly number[];
  readonly recordsIn: number;
  readonly recordsOut: number;
  readonly deadLetters: number;
  readonly deadLetterKey?: string;
  /** The output object, when the phase is the last one and produced records. */
  readonly output?: string;
  readonly bytesRead: number;
  readonly bytesWritten: number;
  /** Set while a stateful task's outputs are written but its state may not be committed yet. */
  readonly pendingState?: boolean;
  /** The highest event time the task's output into an event-time stage carried. */
  readonly maxEventTime?: number;
}

const PIPELINE_KEY = { pk: 'pipeline', sk: 'pipeline' };
const SHARDS_KEY = { pk: 'shards', sk: 'shards' };
const batchKey = (batch: number): { pk: string; sk: string } => ({
  pk: 'batch',
  sk: String(batch).padStart(10, '0'),
});
const taskPk = (batch: number, phase: number): string => `task#${String(batch).padStart(10, '0')}#${phase}`;

function numbers(value: unknown): number[] {
  if (value instanceof Set) return [...(value as Set<number>)].sort((a, b) => a - b);
  if (Array.isArray(value)) return (value as number[]).slice().sort((a, b) => a - b);
  return [];
}

function perPhase(raw: Record<string, unknown>, prefix: string): Record<number, number[]> {
  const result: Record<number, number[]> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (name.startsWith(prefix)) result[Number(name.slice(prefix.length))] = numbers(value);
  }
  return result;
}

/**
 * The pipeline's ledger in DynamoDB: segments, batches, task reports. Every write is a single-item
 * write (conditional where order matters), because exactly-once must not depend on transactions.
 */
export class Ledger {
  constructor(
    private readonly dynamo: DynamoDBDocumentClient,
    readonly table: string,
  ) {}

  /** Registers a shard so the coordinator looks at it. Idempotent (a set ADD). */
  async registerShard(shard: ShardId): Promise<void> {
    await this.dynamo.send(
      new UpdateCommand({
        TableName: this.table,
        Key: SHARDS_KEY,
        UpdateExpression: 'ADD ids :s',
        ExpressionAttributeValues: { ':s': new Set([shard]) },
      }),
    );
  }

  async shards(): Promise<ShardId[]> {
    const out = await this.dynamo.send(
      new GetCommand({ TableName: this.table, Key: SHARDS_KEY, ConsistentRead: true }),
    );
    const ids = out.Item?.ids as Set<string> | undefined;
    return ids ? ([...ids].sort() as ShardId[]) : [];
  }

  /**
   * Registers a segment: the commit point of ingest. A replay writes the same item; a different
   * segment starting at the same sequence number (input re-batched differently, which the
   * event-source mapping never does) is refused loudly rather than silently replacing the first.
   */
  async registerSegment(segment: SegmentItem): Promise<void> {
    try {
      await this.dynamo.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: `segment#${segment.shard}`, sk: padSeq(segment.firstSeq), ...segment },
          ConditionExpression: 'attribute_not_exists(pk) OR (lastSeq = :last AND #records = :records)',
          ExpressionAttributeNames: { '#records': 'records' },
          ExpressionAttributeValues: { ':last': segment.lastSeq, ':records': segment.records },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      throw new InvalidInputError(
        `shard ${segment.shard}: a segment starting at ${segment.firstSeq} is already registered with other records`,
        {},
        error,
      );
    }
  }

  /** Segments of a shard with sort keys in `(after, upTo]`, in sequence order. */
  async segments(shard: ShardId, after: string | undefined, upTo?: string): Promise<SegmentItem[]> {
    const items: SegmentItem[] = [];
    let start: Record<string, unknown> | undefined;
    // Padded sequence numbers sort after '0'; DynamoDB rejects empty strings in key conditions.
    const low = after ?? '0';
    do {
      const out = await this.dynamo.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: upTo ? 'pk = :pk AND sk BETWEEN :low AND :high' : 'pk = :pk AND sk > :low',
          ExpressionAttributeValues: {
            ':pk': `segment#${shard}`,
            ':low': low,
            ...(upTo ? { ':high': upTo } : {}),
          },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of out.Items ?? []) {
        if ((item.sk as string) === low) continue;
        items.push({
          shard: item.shard as ShardId,
          firstSeq: item.firstSeq as string,
          lastSeq: item.lastSeq as string,
          key: item.key as string,
          records: item.records as number,
          bytes: item.bytes as number,
          blocks: item.blocks as string,
        });
      }
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }

  async pipelineState(): Promise<PipelineItem | undefined> {
    const out = await this.dynamo.send(
      new GetCommand({ TableName: this.table, Key: PIPELINE_KEY, ConsistentRead: true }),
    );
    if (!out.Item) return undefined;
    return {
      zeroTime: out.Item.zeroTime as number,
      lastSealed: out.Item.lastSealed as number,
      cursors: (out.Item.cursors ?? {}) as Cursors,
      ...(out.Item.eventTime ? { eventTime: out.Item.eventTime as EventTimeMark } : {}),
    };
  }

  /** Fixes the stream's zero time, once: a second caller gets the first caller's. */
  async initPipeline(zeroTime: number): Promise<PipelineItem> {
    try {
      await this.dynamo.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...PIPELINE_KEY, zeroTime, lastSealed: 0, cursors: {} },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    const state = await this.pipelineState();
    if (!state) throw new Error('pipeline item vanished after creation');
    return state;
  }

  /** Moves `lastSealed` from n-1 to n; false when another coordinator already did. */
  async advanceSealed(batch: BatchId, cursors: Cursors, eventTime?: EventTimeMark): Promise<boolean> {
    try {
      await this.dynamo.send(
        new UpdateCommand({
          TableName: this.table,
          Key: PIPELINE_KEY,
          UpdateExpression: `SET lastSealed = :n, cursors = :c${eventTime ? ', eventTime = :e' : ''}`,
          ConditionExpression: 'lastSealed = :previous',
          ExpressionAttributeValues: {
            ':n': batch,
            ':c': cursors,
            ':previous': batch - 1,
            ...(eventTime ? { ':e': eventTime } : {}),
          },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /** Seals a batch: creates its item unless it exists. Returns the item that is in the ledger. */
  async sealBatch(
    item: Omit<BatchItem, 'done' | 'withData' | 'expected' | 'status'>,
  ): Promise<{ item: BatchItem; created: boolean }> {
    try {
      await this.dynamo.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...batchKey(item.batch), ...item, status: 'sealed' },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return { item: { ...item, status: 'sealed', done: {}, withData: {}, expected: {} }, created: true };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const existing = await this.batch(item.batch);
      if (!existing) throw new Error(`batch ${item.batch} exists and does not`, { cause: error });
      return { item: existing, created: false };
    }
  }

  async batch(batch: BatchId): Promise<BatchItem | undefined> {
    const out = await this.dynamo.send(
      new GetCommand({ TableName: this.table, Key: batchKey(batch), ConsistentRead: true }),
    );
    return out.Item ? toBatchItem(out.Item) : undefined;
  }

  /** Batches from `from` on, in order (at most `limit`). */
  async batchesFrom(from: number, limit = 100): Promise<BatchItem[]> {
    const out = await this.dynamo.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND sk >= :from',
        ExpressionAttributeValues: { ':pk': 'batch', ':from': String(from).padStart(10, '0') },
        ConsistentRead: true,
        Limit: limit,
      }),
    );
    return (out.Items ?? []).map(toBatchItem);
  }

  /** Stores a task's report. A replay stores the same report. */
  async putTaskReport(report: TaskReport): Promise<void> {
    await this.dynamo.send(
      new PutCommand({
        TableName: this.table,
        Item: { pk: taskPk(report.batch, report.phase), sk: String(report.task).padStart(6, '0'), ...report },
      }),
    );
  }

  async taskReport(batch: BatchId, phase: number, task: TaskId): Promise<TaskReport | undefined> {
    const out = await this.dynamo.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: taskPk(batch, phase), sk: String(task).padStart(6, '0') },
        ConsistentRead: true,
      }),
    );
    return out.Item ? toTaskReport(out.Item) : undefined;
  }

  /** All reports of a phase of a batch, in task order. */
  async taskReports(batch: BatchId, phase: number): Promise<TaskReport[]> {
    const reports: TaskReport[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.dynamo.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': taskPk(batch, phase) },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of out.Items ?? []) reports.push(toTaskReport(item));
      start = out.LastEvaluatedKey;
    } while (start);
    return reports;
  }

  /**
   * Marks a task of a phase done and notes which next-phase partitions it wrote data for. Set ADDs
   * make this idempotent; the returned item tells the caller whether the phase is now complete.
   */
  async markTaskDone(
    batch: BatchId,
    phase: number,
    task: TaskId,
    withData: readonly number[],
    now: number,
  ): Promise<BatchItem> {
    const values: Record<string, unknown> = { ':t': new Set([task]), ':now': now };
    let update = `ADD done_${phase} :t`;
    if (withData.length > 0) {
      update += `, withData_${phase + 1} :w`;
      values[':w'] = new Set(withData);
    }
    const out = await this.dynamo.send(
      new UpdateCommand({
        TableName: this.table,
        Key: batchKey(batch),
        UpdateExpression: `${update} SET updatedAt = :now`,
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: values,
        ReturnValues: 'ALL_NEW',
      }),
    );
    return toBatchItem(out.Attributes ?? {});
  }

  /**
   * Records which tasks a phase was started with (and, starting an event-time stage, the batch's
   * highest event time). The same values on every replay.
   */
  async setExpected(
    batch: BatchId,
    phase: number,
    tasks: readonly number[],
    now: number,
    eventTimeMax?: number | null,
  ): Promise<void> {
    await this.dynamo.send(
      new UpdateCommand({
        TableName: this.table,
        Key: batchKey(batch),
        UpdateExpression: `SET expected_${phase} = :tasks, updatedAt = :now${eventTimeMax === undefined ? '' : ', eventTimeMax = :m'}`,
        ExpressionAttributeValues: {
          ':tasks': [...tasks],
          ':now': now,
          ...(eventTimeMax === undefined ? {} : { ':m': eventTimeMax }),
        },
      }),
    );
  }

  /** Marks a batch complete; true for the caller that did it first (it runs the completion hooks). */
  async completeBatch(batch: BatchId, summary: BatchSummary, now: number): Promise<boolean> {
    try {
      await this.dynamo.send(
        new UpdateCommand({
          TableName: this.table,
          Key: batchKey(batch),
          UpdateExpression:
            'SET #status = :complete, summary = :summary, completedAt = :now, updatedAt = :now',
          ConditionExpression: '#status = :sealed',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':complete': 'complete',
            ':sealed': 'sealed',
            ':summary': summary,
            ':now': now,
          },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /** Marks a running batch failed, with why. */
  async failBatch(batch: BatchId, failure: NonNullable<BatchItem['failure']>, now: number): Promise<void> {
    try {
      await this.dynamo.send(
        new UpdateCommand({
          TableName: this.table,
          Key: batchKey(batch),
          UpdateExpression: 'SET #status = :failed, failure = :failure, updatedAt = :now',
          ConditionExpression: '#status = :sealed',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':failed': 'failed',
            ':sealed': 'sealed',
            ':failure': failure,
            ':now': now,
          },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }
}

function toBatchItem(raw: Record<string, unknown>): BatchItem {
  return {
    batch: raw.batch as BatchId,
    time: raw.time as number,
    status: raw.status as BatchStatus,
    cursors: (raw.cursors ?? {}) as Cursors,
    previousCursors: (raw.previousCursors ?? {}) as Cursors,
    inputRecords: raw.inputRecords as number,
    inputBytes: raw.inputBytes as number,
    tasks: raw.tasks as number,
    sealedAt: raw.sealedAt as number,
    updatedAt: raw.updatedAt as number,
    ...(raw.completedAt === undefined ? {} : { completedAt: raw.completedAt as number }),
    ...(raw.summary === undefined ? {} : { summary: raw.summary as BatchSummary }),
    ...(raw.failure === undefined ? {} : { failure: raw.failure as NonNullable<BatchItem['failure']> }),
    ...(raw.eventTime === undefined ? {} : { eventTime: raw.eventTime as EventTimeMark }),
    ...(raw.eventTimeMax === undefined ? {} : { eventTimeMax: raw.eventTimeMax as number | null }),
    done: perPhase(raw, 'done_'),
    withData: perPhase(raw, 'withData_'),
    expected: perPhase(raw, 'expected_'),
  };
}

function toTaskReport(raw: Record<string, unknown>): TaskReport {
  const { pk: _pk, sk: _sk, ...rest } = raw;
  return { ...(rest as unknown as TaskReport), withData: numbers(raw.withData) };
}
