import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { BatchFailure, RunningStatus } from '../../batch';
import type { BatchId } from '../../ids';
import { BatchItems } from './batch-items';
import { FailedMarkers } from './failed-markers';
import { PipelineItems } from './pipeline-item';
import { SegmentItems } from './segment-items';
import { TaskReports } from './task-reports';
import { LedgerTable } from './table';

/**
 * The pipeline's ledger in DynamoDB, one class per item type (the layout is in `items.ts`). Every
 * write is a single-item write (conditional where order matters), because exactly-once must not
 * depend on transactions.
 *
 * @example
 * const ledger = new Ledger(dynamo, 'wordcount-ledger');
 * const item = await ledger.batches.get(batchId(7));
 */
export class Ledger {
  readonly pipeline: PipelineItems;
  readonly segments: SegmentItems;
  readonly batches: BatchItems;
  readonly reports: TaskReports;
  readonly failed: FailedMarkers;

  constructor(dynamo: DynamoDBDocumentClient, table: string) {
    const ledger = new LedgerTable(dynamo, table);
    this.pipeline = new PipelineItems(ledger);
    this.segments = new SegmentItems(ledger);
    this.batches = new BatchItems(ledger);
    this.reports = new TaskReports(ledger);
    this.failed = new FailedMarkers(ledger);
  }

  /**
   * Fails a batch (see `BatchItems.fail`) and leaves the marker the coordinator finds on its next
   * pass. A late retry of a batch's own work cannot fail the skipping of it. Idempotent: a repeat
   * after a crash between the two writes only writes the marker.
   */
  async failBatch(batch: BatchId, failure: BatchFailure, now: number, from: RunningStatus): Promise<boolean> {
    const failed = await this.batches.fail(batch, failure, now, from);
    const item = failed ? undefined : await this.batches.get(batch);
    if (failed || item?.status === 'failed') {
      await this.failed.put({
        batch,
        message: (item?.failure ?? failure).message,
        at: item?.failure?.at ?? failure.at ?? now,
      });
    }
    return failed;
  }
}
