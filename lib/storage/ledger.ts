import {
  DeleteCommand,
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
import type { EventTimeHigh, WatermarkFold } from '../watermark';

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
  /** Event-time pipelines: the watermark fold so far (see `lib/watermark.ts`). */
  readonly watermarkFold?: WatermarkFold;
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

/**
 * Batch status: `sealed` while it runs, then `complete`; or `failed` (it stops there until it is
 * retried, which makes it `sealed` again, or skipped); a skipped batch is `skipping` while its
 * stateful partitions move their state past it, then `skipped`.
 */
export type BatchStatus = 'sealed' | 'complete' | 'failed' | 'skipping' | 'skipped';

/** The statuses in which a batch has work running: its own, or that of skipping it. */
export type RunningStatus = Extract<BatchStatus, 'sealed' | 'skipping'>;

/** Why a batch failed, and where. */
export interface BatchFailure {
  /** What went wrong, with the error's name and hint. */
  readonly message: string;
  readonly phase: number;
  readonly task: number;
  /** The phase function (stage id, or `read`). */
  readonly stage?: string;
  /** When it failed, epoch ms. */
  readonly at?: number;
  /** Set when the failure happened while the batch was being skipped: it is not skipped again by itself. */
  readonly duringSkip?: boolean;
}

/** The retry budget a task of a batch has used: attempts that failed transiently, since when. */
export interface TaskAttempts {
  readonly phase: number;
  readonly task: number;
  readonly attempts: number;
  /** The first failed attempt, epoch ms. */
  readonly since: number;
}

/** The marker of a failed batch that nobody has retried or skipped yet. */
export interface FailedMarker {
  readonly batch: BatchId;
  readonly message: string;
  readonly at: number;
}

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
  readonly failure?: BatchFailure;
  /** The last transient error of any task, for the failure message when the budget runs out. */
  readonly lastError?: string;
  /** Tasks that have failed transiently, with how often and since when. */
  readonly attempts: readonly TaskAttempts[];
  /** Event-time pipelines: the watermark fold this batch was sealed with (its manifest's high). */
  readonly watermarkFold?: WatermarkFold;
  /** Event-time pipelines: this batch's own highest event time, once its event-time phase started. */
  readonly eventTimeHigh?: EventTimeHigh;
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
  readonly eventTimeHigh?: number;
  /** Set when the task only moved its partition's state past a skipped batch. */
  readonly skipped?: boolean;
}

const PIPELINE_KEY = { pk: 'pipeline', sk: 'pipeline' };
const FAILED_PK = 'failed';
const SHARDS_KEY = { pk: 'shards', sk: 'shards' };
/** A batch number as a sort key (and a part of one): zero-padded, so keys sort in batch order. */
const batchSk = (batch: number): string => String(batch).padStart(10, '0');
const batchKey = (batch: number): { pk: string; sk: string } => ({ pk: 'batch', sk: batchSk(batch) });
const taskPk = (batch: number, phase: number): string => `task#${batchSk(batch)}#${phase}`;

/**
 * The attributes that hold the retry budget a task has used: `attempts_<phase>_<task>` and
 * `since_<phase>_<task>`, as expression names `#a<i>` and `#s<i>`.
 */
function budgetNames(tasks: readonly { readonly phase: number; readonly task: number }[]): {
  names: Record<string, string>;
  attempts: string[];
  since: string[];
} {
  const names: Record<string, string> = {};
  const attempts: string[] = [];
  const since: string[] = [];
  tasks.forEach(({ phase, task }, i) => {
    names[`#a${i}`] = `attempts_${phase}_${task}`;
    names[`#s${i}`] = `since_${phase}_${task}`;
    attempts.push(`#a${i}`);
    since.push(`#s${i}`);
  });
  return { names, attempts, since };
}

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

  /** Every item under one partition key, in sort-key order, page by page. */
  private async queryAll(pk: string): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.dynamo.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': pk },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      items.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /**
   * Moves a batch from one status to another, setting `set` (and `updatedAt`) and removing
   * `remove` in the same write; true if it moved, false if it was not in `from` (someone else moved
   * it first). Every status change of a batch after its seal is one of these.
   */
  private async moveStatus(
    batch: BatchId,
    from: BatchStatus,
    to: BatchStatus,
    now: number,
    change: {
      readonly set?: Readonly<Record<string, unknown>>;
      readonly remove?: { readonly names: Record<string, string>; readonly attributes: readonly string[] };
    } = {},
  ): Promise<boolean> {
    const fields = Object.entries(change.set ?? {});
    const set = ['#status = :to', 'updatedAt = :now', ...fields.map(([name]) => `${name} = :${name}`)];
    const remove = change.remove?.attributes ?? [];
    try {
      await this.dynamo.send(
        new UpdateCommand({
          TableName: this.table,
          Key: batchKey(batch),
          UpdateExpression: `SET ${set.join(', ')}${remove.length > 0 ? ` REMOVE ${remove.join(', ')}` : ''}`,
          ConditionExpression: '#status = :from',
          ExpressionAttributeNames: { '#status': 'status', ...change.remove?.names },
          ExpressionAttributeValues: {
            ':from': from,
            ':to': to,
            ':now': now,
            ...Object.fromEntries(fields.map(([name, value]) => [`:${name}`, value])),
          },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

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

  /** The last sequence number of a shard's newest registered segment, if it has any. */
  async lastSegmentSeq(shard: ShardId): Promise<string | undefined> {
    const out = await this.dynamo.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': `segment#${shard}` },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    const item = out.Items?.[0];
    return item ? String(item.lastSeq) : undefined;
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
      ...(out.Item.watermarkFold ? { watermarkFold: out.Item.watermarkFold as WatermarkFold } : {}),
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
  async advanceSealed(batch: BatchId, cursors: Cursors, fold?: WatermarkFold): Promise<boolean> {
    try {
      await this.dynamo.send(
        new UpdateCommand({
          TableName: this.table,
          Key: PIPELINE_KEY,
          UpdateExpression: `SET lastSealed = :n, cursors = :c${fold ? ', watermarkFold = :f' : ''}`,
          ConditionExpression: 'lastSealed = :previous',
          ExpressionAttributeValues: {
            ':n': batch,
            ':c': cursors,
            ':previous': batch - 1,
            ...(fold ? { ':f': fold } : {}),
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
    item: Omit<BatchItem, 'done' | 'withData' | 'expected' | 'status' | 'attempts'>,
  ): Promise<{ item: BatchItem; created: boolean }> {
    try {
      await this.dynamo.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...batchKey(item.batch), ...item, status: 'sealed' },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return {
        item: { ...item, status: 'sealed', done: {}, withData: {}, expected: {}, attempts: [] },
        created: true,
      };
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
        ExpressionAttributeValues: { ':pk': 'batch', ':from': batchSk(from) },
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
    return (await this.queryAll(taskPk(batch, phase))).map(toTaskReport);
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
   * event-time high). The same values on every replay.
   */
  async setExpected(
    batch: BatchId,
    phase: number,
    tasks: readonly number[],
    now: number,
    eventTimeHigh?: EventTimeHigh,
  ): Promise<void> {
    await this.dynamo.send(
      new UpdateCommand({
        TableName: this.table,
        Key: batchKey(batch),
        UpdateExpression: `SET expected_${phase} = :tasks, updatedAt = :now${eventTimeHigh === undefined ? '' : ', eventTimeHigh = :h'}`,
        ExpressionAttributeValues: {
          ':tasks': [...tasks],
          ':now': now,
          ...(eventTimeHigh === undefined ? {} : { ':h': eventTimeHigh }),
        },
      }),
    );
  }

  /** Marks a batch complete; true for the caller that did it first (it runs the completion hooks). */
  async completeBatch(batch: BatchId, summary: BatchSummary, now: number): Promise<boolean> {
    return this.moveStatus(batch, 'sealed', 'complete', now, { set: { summary, completedAt: now } });
  }

  /**
   * Counts a failed attempt of a task against its retry budget and returns the budget used so far,
   * or `undefined` when the batch is no longer in the status the task ran for (`sealed`, or
   * `skipping` for a skip-mode task): nothing is left to retry for.
   */
  async recordAttempt(
    batch: BatchId,
    phase: number,
    task: number,
    now: number,
    error: string,
    running: RunningStatus,
  ): Promise<TaskAttempts | undefined> {
    const { names, attempts, since } = budgetNames([{ phase, task }]);
    const [count, first] = [attempts[0] as string, since[0] as string];
    try {
      const out = await this.dynamo.send(
        new UpdateCommand({
          TableName: this.table,
          Key: batchKey(batch),
          UpdateExpression: `ADD ${count} :one SET ${first} = if_not_exists(${first}, :now), lastError = :error`,
          ConditionExpression: '#status = :running',
          ExpressionAttributeNames: { ...names, '#status': 'status' },
          ExpressionAttributeValues: {
            ':one': 1,
            ':now': now,
            ':error': `phase ${phase} task ${task}: ${error}`.slice(0, 2000),
            ':running': running,
          },
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      const attributes = out.Attributes ?? {};
      return {
        phase,
        task,
        attempts: Number(attributes[names[count] as string] ?? 1),
        since: Number(attributes[names[first] as string] ?? now),
      };
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  /**
   * Marks a batch failed, with why, if it is still in the status the failing work ran for (`sealed`,
   * or `skipping` for the work of skipping it: such a failure is marked `duringSkip`), and leaves a
   * marker that the coordinator finds on its next pass (it halts sealing or skips the batch). A late
   * retry of a batch's own work cannot fail the skipping of it. Idempotent: a repeat after a crash
   * between the two writes only writes the marker.
   */
  async failBatch(batch: BatchId, failure: BatchFailure, now: number, from: RunningStatus): Promise<boolean> {
    const failed = await this.moveStatus(batch, from, 'failed', now, {
      set: { failure: from === 'skipping' ? { ...failure, duringSkip: true } : failure },
    });
    const item = failed ? undefined : await this.batch(batch);
    if (failed || item?.status === 'failed') {
      await this.putFailedMarker({
        batch,
        message: (item?.failure ?? failure).message,
        at: item?.failure?.at ?? failure.at ?? now,
      });
    }
    return failed;
  }

  /** Writes the marker of a failed batch (the same item on a repeat). */
  async putFailedMarker(marker: FailedMarker): Promise<void> {
    await this.dynamo.send(
      new PutCommand({
        TableName: this.table,
        Item: { pk: FAILED_PK, sk: batchSk(marker.batch), ...marker },
      }),
    );
  }

  /** Failed batches that nobody has retried or skipped yet, oldest first. */
  async failedMarkers(): Promise<FailedMarker[]> {
    return (await this.queryAll(FAILED_PK)).map((item) => ({
      batch: item.batch as BatchId,
      message: String(item.message),
      at: Number(item.at),
    }));
  }

  /** Removes a failed batch's marker, once the batch is retried or skipped. */
  async deleteFailedMarker(batch: BatchId): Promise<void> {
    await this.dynamo.send(
      new DeleteCommand({
        TableName: this.table,
        Key: { pk: FAILED_PK, sk: batchSk(batch) },
      }),
    );
  }

  /**
   * A failed batch runs again: `failed` becomes `sealed`, its failure and its tasks' retry budgets
   * are cleared. False when it was not failed (someone else retried or skipped it).
   */
  async reopenBatch(item: BatchItem, now: number): Promise<boolean> {
    const budget = budgetNames(item.attempts);
    return this.moveStatus(item.batch, 'failed', 'sealed', now, {
      remove: {
        names: budget.names,
        attributes: ['failure', 'lastError', ...budget.attempts, ...budget.since],
      },
    });
  }

  /** A failed batch is given up: `failed` becomes `skipping`. False when it was not failed. */
  async startSkip(batch: BatchId, now: number): Promise<boolean> {
    return this.moveStatus(batch, 'failed', 'skipping', now);
  }

  /** Marks a skipping batch skipped; true for the caller that did it first. */
  async completeSkip(batch: BatchId, summary: BatchSummary, now: number): Promise<boolean> {
    return this.moveStatus(batch, 'skipping', 'skipped', now, { set: { summary, completedAt: now } });
  }

  /** Counts a sweep's re-drive of tasks against their retry budgets, in one write. */
  async recordRedrive(
    batch: BatchId,
    tasks: readonly { readonly phase: number; readonly task: number }[],
    now: number,
  ): Promise<void> {
    if (tasks.length === 0) return;
    const { names, attempts, since } = budgetNames(tasks);
    const adds = attempts.map((name) => `${name} :one`);
    const sets = since.map((name) => `${name} = if_not_exists(${name}, :now)`);
    await this.dynamo.send(
      new UpdateCommand({
        TableName: this.table,
        Key: batchKey(batch),
        UpdateExpression: `ADD ${adds.join(', ')} SET ${sets.join(', ')}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: { ':one': 1, ':now': now },
      }),
    );
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
    ...(raw.failure === undefined ? {} : { failure: raw.failure as BatchFailure }),
    ...(raw.lastError === undefined ? {} : { lastError: String(raw.lastError) }),
    attempts: attemptsOf(raw),
    ...(raw.watermarkFold === undefined ? {} : { watermarkFold: raw.watermarkFold as WatermarkFold }),
    ...(raw.eventTimeHigh === undefined ? {} : { eventTimeHigh: raw.eventTimeHigh as EventTimeHigh }),
    done: perPhase(raw, 'done_'),
    withData: perPhase(raw, 'withData_'),
    expected: perPhase(raw, 'expected_'),
  };
}

/** The `attempts_<phase>_<task>` and `since_<phase>_<task>` attributes of a batch item. */
function attemptsOf(raw: Record<string, unknown>): TaskAttempts[] {
  const result: TaskAttempts[] = [];
  for (const [name, value] of Object.entries(raw)) {
    const match = /^attempts_(\d+)_(\d+)$/.exec(name);
    if (!match) continue;
    const phase = Number(match[1]);
    const task = Number(match[2]);
    result.push({ phase, task, attempts: Number(value), since: Number(raw[`since_${phase}_${task}`] ?? 0) });
  }
  return result.sort((a, b) => a.phase - b.phase || a.task - b.task);
}

function toTaskReport(raw: Record<string, unknown>): TaskReport {
  const { pk: _pk, sk: _sk, ...rest } = raw;
  return { ...(rest as unknown as TaskReport), withData: numbers(raw.withData) };
}
