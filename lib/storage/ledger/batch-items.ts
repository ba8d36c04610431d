import { PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type {
  BatchFailure,
  BatchItem,
  BatchStatus,
  BatchSummary,
  LateUnits,
  RunningStatus,
  TaskAttempts,
  TaskReport,
} from '../../batch';
import type { BatchId } from '../../ids';
import type { EventTimeHigh } from '../../watermark';
import { conditionalWrite, isConditionFailure } from '../conditions';
import { batchItem, batchSk, budgetNames, LEDGER_ITEM_KEYS, parseBatchItem, statusAtSeal } from './items';
import type { LedgerTable } from './table';

/** What a batch's item holds when it is sealed; the rest starts empty. */
export type SealedBatch = Omit<
  BatchItem,
  'done' | 'withData' | 'expected' | 'status' | 'attempts' | 'counted'
>;

/**
 * The batch items: one per sealed batch, with its status, which tasks of which phases were started
 * and have reported, and its tasks' retry budgets. Status changes are conditional on the status
 * the change starts from, so concurrent coordinators and tasks never move a batch twice.
 *
 * @example
 * const item = await ledger.batches.get(batchId(7));
 */
export class BatchItems {
  constructor(private readonly table: LedgerTable) {}

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
    return conditionalWrite(() =>
      this.table.dynamo.send(
        new UpdateCommand({
          TableName: this.table.name,
          Key: LEDGER_ITEM_KEYS.batch(batch),
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
      ),
    );
  }

  /**
   * Creates a sealed batch's item unless it exists. Returns the item that is in the ledger. A quiet
   * batch (`quietUntil` set, with its `summary` and `completedAt`) is created complete.
   */
  async create(item: SealedBatch): Promise<{ item: BatchItem; created: boolean }> {
    const created = await conditionalWrite(() =>
      this.table.dynamo.send(
        new PutCommand({
          TableName: this.table.name,
          Item: batchItem(item),
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
    if (created) {
      return {
        item: {
          ...item,
          status: statusAtSeal(item),
          done: {},
          withData: {},
          expected: {},
          attempts: [],
          counted: { deadLetters: 0, outputRecords: 0, outputPartitions: [], readUnits: 0, writeUnits: 0 },
        },
        created,
      };
    }
    const existing = await this.get(item.batch);
    if (!existing) throw new Error(`batch ${item.batch} exists and does not`);
    return { item: existing, created };
  }

  /** Deletes a batch's item (an expired batch's, after its reports and segment items). */
  async delete(batch: BatchId): Promise<void> {
    await this.table.delete(LEDGER_ITEM_KEYS.batch(batch));
  }

  async get(batch: BatchId): Promise<BatchItem | undefined> {
    const raw = await this.table.get(LEDGER_ITEM_KEYS.batch(batch));
    return raw ? parseBatchItem(raw) : undefined;
  }

  /** Every batch of the ledger, in order. */
  async all(): Promise<BatchItem[]> {
    return (await this.table.queryAll(LEDGER_ITEM_KEYS.batchPk)).map(parseBatchItem);
  }

  /** Batches from `from` on, in order (at most `limit`). */
  async from(from: number, limit = 100): Promise<BatchItem[]> {
    const out = await this.table.dynamo.send(
      new QueryCommand({
        TableName: this.table.name,
        KeyConditionExpression: 'pk = :pk AND sk >= :from',
        ExpressionAttributeValues: { ':pk': LEDGER_ITEM_KEYS.batchPk, ':from': batchSk(from) },
        ConsistentRead: true,
        Limit: limit,
      }),
    );
    return (out.Items ?? []).map(parseBatchItem);
  }

  /**
   * Marks a task done: adds it to its phase's done set, notes which next-phase partitions it wrote
   * data for, and adds its report's dead letters (and, in the last phase, its output) to the
   * batch's counts. Only the first mark of a task counts (the write is conditional on the task not
   * being done yet); a repeat reads the item instead. The returned item tells the caller whether
   * the phase is now complete.
   */
  async markTaskDone(report: TaskReport, last: boolean, now: number, late?: LateUnits): Promise<BatchItem> {
    const { batch, phase, task, withData } = report;
    const values: Record<string, unknown> = {
      ':t': new Set([task]),
      ':task': task,
      ':now': now,
      ':dead': report.deadLetters,
    };
    const adds = [`done_${phase} :t`, 'countedDeadLetters :dead'];
    if (withData.length > 0) {
      adds.push(`withData_${phase + 1} :w`);
      values[':w'] = new Set(withData);
    }
    if (late && late.readUnits > 0) {
      adds.push('countedReadUnits :ru');
      values[':ru'] = late.readUnits;
    }
    if (late && late.writeUnits > 0) {
      adds.push('countedWriteUnits :wu');
      values[':wu'] = late.writeUnits;
    }
    if (last) {
      adds.push('countedOutputRecords :out');
      values[':out'] = report.recordsOut;
      if (report.output) {
        adds.push('countedOutputPartitions :p');
        values[':p'] = new Set([task]);
      }
    }
    try {
      const out = await this.table.dynamo.send(
        new UpdateCommand({
          TableName: this.table.name,
          Key: LEDGER_ITEM_KEYS.batch(batch),
          UpdateExpression: `ADD ${adds.join(', ')} SET updatedAt = :now`,
          ConditionExpression: `attribute_exists(pk) AND NOT contains(done_${phase}, :task)`,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return parseBatchItem(out.Attributes ?? {});
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      // Marked before (a duplicate or a retry): nothing to add, the item is as it was left.
      const item = await this.get(batch);
      if (!item) throw new Error(`batch ${batch} has no ledger item`, { cause: error });
      return item;
    }
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
    await this.table.dynamo.send(
      new UpdateCommand({
        TableName: this.table.name,
        Key: LEDGER_ITEM_KEYS.batch(batch),
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
  async complete(batch: BatchId, summary: BatchSummary, now: number): Promise<boolean> {
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
      const out = await this.table.dynamo.send(
        new UpdateCommand({
          TableName: this.table.name,
          Key: LEDGER_ITEM_KEYS.batch(batch),
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
   * or `skipping` for the work of skipping it: such a failure is marked `duringSkip`). True for the
   * caller that moved it.
   */
  async fail(batch: BatchId, failure: BatchFailure, now: number, from: RunningStatus): Promise<boolean> {
    return this.moveStatus(batch, from, 'failed', now, {
      set: { failure: from === 'skipping' ? { ...failure, duringSkip: true } : failure },
    });
  }

  /**
   * A failed batch runs again: `failed` becomes `sealed`, its failure and its tasks' retry budgets
   * are cleared. False when it was not failed (someone else retried or skipped it).
   */
  async reopen(item: BatchItem, now: number): Promise<boolean> {
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
    await this.table.dynamo.send(
      new UpdateCommand({
        TableName: this.table.name,
        Key: LEDGER_ITEM_KEYS.batch(batch),
        UpdateExpression: `ADD ${adds.join(', ')} SET ${sets.join(', ')}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: { ':one': 1, ':now': now },
      }),
    );
  }
}
