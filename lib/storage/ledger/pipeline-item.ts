import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Cursors, Pause, PipelineItem } from '../../batch';
import type { BatchId } from '../../ids';
import type { WatermarkFold } from '../../watermark';
import type { StateLayouts } from '../../state/layout';
import { conditionalWrite } from '../conditions';
import { LEDGER_ITEM_KEYS, parsePipelineItem, pipelineItem } from './items';
import type { LedgerTable } from './table';

/**
 * The pipeline's own item: its zero time, the last sealed batch, the shards' cursors and the
 * watermark fold. Sealing moves it forward one batch at a time, conditionally.
 *
 * @example
 * const { zeroTime, lastSealed } = await ledger.pipeline.init(Date.now());
 */
export class PipelineItems {
  constructor(private readonly table: LedgerTable) {}

  /** The item, once the pipeline has started. */
  async get(): Promise<PipelineItem | undefined> {
    const raw = await this.table.get(LEDGER_ITEM_KEYS.pipeline);
    return raw ? parsePipelineItem(raw) : undefined;
  }

  /**
   * Fixes the stream's zero time, once: a second caller gets the first caller's. A ledger that
   * starts after batch 0 (`lastSealed`: a replay of a pipeline without state from a later batch)
   * seals, or is given, the batch after it first.
   */
  async init(zeroTime: number, lastSealed = 0): Promise<PipelineItem> {
    await conditionalWrite(() =>
      this.table.dynamo.send(
        new PutCommand({
          TableName: this.table.name,
          Item: pipelineItem({ zeroTime, lastSealed, cursors: {} }),
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
    const state = await this.get();
    if (!state) throw new Error('pipeline item vanished after creation');
    return state;
  }

  /**
   * Pauses sealing: true if this call paused it, false if it was paused already (the first pause
   * and its reason stand).
   */
  async pause(pause: Pause): Promise<boolean> {
    return conditionalWrite(() =>
      this.table.dynamo.send(
        new UpdateCommand({
          TableName: this.table.name,
          Key: LEDGER_ITEM_KEYS.pipeline,
          UpdateExpression: 'SET paused = :p',
          ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(paused)',
          ExpressionAttributeValues: { ':p': pause },
        }),
      ),
    );
  }

  /** Resumes sealing: true if this call resumed it, false if it was not paused. */
  async resume(): Promise<boolean> {
    return conditionalWrite(() =>
      this.table.dynamo.send(
        new UpdateCommand({
          TableName: this.table.name,
          Key: LEDGER_ITEM_KEYS.pipeline,
          UpdateExpression: 'REMOVE paused',
          ConditionExpression: 'attribute_exists(paused)',
        }),
      ),
    );
  }

  /**
   * Marks the coordinator asleep: no invocation waits for the next batch. Without `wakeAt` (an idle
   * stream) the first ingest wakes one; with it, the first ingest at or after that time.
   */
  async sleep(now: number, wakeAt?: number): Promise<void> {
    await this.table.dynamo.send(
      new UpdateCommand({
        TableName: this.table.name,
        Key: LEDGER_ITEM_KEYS.pipeline,
        UpdateExpression:
          wakeAt === undefined ? 'SET asleep = :now REMOVE wakeAt' : 'SET asleep = :now, wakeAt = :at',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':now': now, ...(wakeAt === undefined ? {} : { ':at': wakeAt }) },
      }),
    );
  }

  /**
   * Clears the asleep mark: true for the one caller that cleared it (and so starts a coordinator or
   * stays awake), false if it was not set. With `seen` (what an ingest read), only that mark: one
   * a coordinator has set again meanwhile, for a later boundary, stays.
   */
  async wake(seen?: { readonly wakeAt: number | undefined }): Promise<boolean> {
    const same =
      seen === undefined
        ? {}
        : seen.wakeAt === undefined
          ? { ConditionExpression: 'attribute_exists(asleep) AND attribute_not_exists(wakeAt)' }
          : {
              ConditionExpression: 'attribute_exists(asleep) AND wakeAt = :at',
              ExpressionAttributeValues: { ':at': seen.wakeAt },
            };
    return conditionalWrite(() =>
      this.table.dynamo.send(
        new UpdateCommand({
          TableName: this.table.name,
          Key: LEDGER_ITEM_KEYS.pipeline,
          UpdateExpression: 'REMOVE asleep, wakeAt',
          ConditionExpression: 'attribute_exists(asleep)',
          ...same,
        }),
      ),
    );
  }

  /**
   * Records that every batch through n is complete or skipped; only ever moves it up, so a sweep
   * that read the ledger before another's never moves it back.
   */
  async recordSettled(batch: number): Promise<boolean> {
    return conditionalWrite(() =>
      this.table.dynamo.send(
        new UpdateCommand({
          TableName: this.table.name,
          Key: LEDGER_ITEM_KEYS.pipeline,
          UpdateExpression: 'SET settledThrough = :n',
          ConditionExpression:
            'attribute_exists(pk) AND (attribute_not_exists(settledThrough) OR settledThrough < :n)',
          ExpressionAttributeValues: { ':n': batch },
        }),
      ),
    );
  }

  /** Records that the items of every batch through n are deleted; only ever moves it up. */
  async recordExpired(batch: number): Promise<boolean> {
    return conditionalWrite(() =>
      this.table.dynamo.send(
        new UpdateCommand({
          TableName: this.table.name,
          Key: LEDGER_ITEM_KEYS.pipeline,
          UpdateExpression: 'SET expiredThrough = :n',
          ConditionExpression:
            'attribute_exists(pk) AND (attribute_not_exists(expiredThrough) OR expiredThrough < :n)',
          ExpressionAttributeValues: { ':n': batch },
        }),
      ),
    );
  }

  /**
   * Records that batch n is sealed, with what it was sealed with (cursors, watermark fold, state
   * layouts): `lastSealed` moves from n-1 to n; false when another did it.
   */
  async recordSeal(
    batch: BatchId,
    cursors: Cursors,
    fold?: WatermarkFold,
    layouts?: StateLayouts,
  ): Promise<boolean> {
    return conditionalWrite(() =>
      this.table.dynamo.send(
        new UpdateCommand({
          TableName: this.table.name,
          Key: LEDGER_ITEM_KEYS.pipeline,
          UpdateExpression: `SET lastSealed = :n, cursors = :c${fold ? ', watermarkFold = :f' : ''}${layouts ? ', layouts = :l' : ''}`,
          ConditionExpression: 'lastSealed = :previous',
          ExpressionAttributeValues: {
            ':n': batch,
            ':c': cursors,
            ':previous': batch - 1,
            ...(fold ? { ':f': fold } : {}),
            ...(layouts ? { ':l': layouts } : {}),
          },
        }),
      ),
    );
  }
}
