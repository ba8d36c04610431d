import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { FailedMarker } from '../../batch';
import type { BatchId } from '../../ids';
import { failedItem, LEDGER_ITEM_KEYS, parseFailedItem } from './items';
import type { LedgerTable } from './table';

/**
 * Markers of failed batches that nobody has retried or skipped yet: the coordinator reads them
 * first on every pass (one query, however many batches there are) to halt or skip.
 *
 * @example
 * for (const marker of await ledger.failed.list()) console.log(marker.batch, marker.message);
 */
export class FailedMarkers {
  constructor(private readonly table: LedgerTable) {}

  /** Writes the marker of a failed batch (the same item on a repeat). */
  async put(marker: FailedMarker): Promise<void> {
    await this.table.dynamo.send(new PutCommand({ TableName: this.table.name, Item: failedItem(marker) }));
  }

  /** Failed batches that nobody has retried or skipped yet, oldest first. */
  async list(): Promise<FailedMarker[]> {
    return (await this.table.queryAll(LEDGER_ITEM_KEYS.failedPk)).map(parseFailedItem);
  }

  /** Removes a failed batch's marker, once the batch is retried or skipped. */
  async delete(batch: BatchId): Promise<void> {
    await this.table.dynamo.send(
      new DeleteCommand({ TableName: this.table.name, Key: LEDGER_ITEM_KEYS.failed(batch) }),
    );
  }
}
