import { PutCommand } from '@aws-sdk/lib-dynamodb';
import type { TaskReport } from '../../batch';
import type { BatchId, TaskId } from '../../ids';
import { LEDGER_ITEM_KEYS, parseTaskReport, taskReportItem } from './items';
import type { LedgerTable } from './table';

/**
 * What each task of each phase of each batch reported, once its outputs were written.
 *
 * @example
 * const reports = await ledger.reports.list(batchId(7), 0);
 */
export class TaskReports {
  constructor(private readonly table: LedgerTable) {}

  /** Stores a task's report. A replay stores the same report. */
  async put(report: TaskReport): Promise<void> {
    await this.table.dynamo.send(
      new PutCommand({ TableName: this.table.name, Item: taskReportItem(report) }),
    );
  }

  async get(batch: BatchId, phase: number, task: TaskId): Promise<TaskReport | undefined> {
    const raw = await this.table.get(LEDGER_ITEM_KEYS.task(batch, phase, task));
    return raw ? parseTaskReport(raw) : undefined;
  }

  /** Deletes every report of a phase of a batch (an expired batch's). */
  async deletePhase(batch: BatchId, phase: number): Promise<number> {
    const items = await this.table.queryAll(LEDGER_ITEM_KEYS.taskPk(batch, phase));
    for (const item of items) await this.table.delete({ pk: item.pk as string, sk: item.sk as string });
    return items.length;
  }

  /** All reports of a phase of a batch, in task order. */
  async list(batch: BatchId, phase: number): Promise<TaskReport[]> {
    return (await this.table.queryAll(LEDGER_ITEM_KEYS.taskPk(batch, phase))).map(parseTaskReport);
  }
}
