// zod/mini: the same validation without the full library in every function bundle.
import * as z from 'zod/mini';
import { InvalidInputError } from '../errors';
import { batchId, type BatchId } from '../ids';
import type { RuntimeContext } from './context';
import { retryBatch, skipBatch } from './failure';

/**
 * What an operator asks of a running pipeline. `pause`: the coordinator seals nothing until
 * `resume` (ingest goes on writing segments; batches already sealed finish). `retry`: run a failed
 * batch again. `skip`: give a failed batch up (its input is dead-lettered, state moves past it).
 */
export type OperatorCommand =
  | { readonly kind: 'pause'; readonly reason: string }
  | { readonly kind: 'resume' }
  | { readonly kind: 'retry'; readonly batch: BatchId }
  | { readonly kind: 'skip'; readonly batch: BatchId; readonly reason: string };

/**
 * An operator's command, sent to the coordinator function (`sluice pause`, `sluice batches retry`):
 * on AWS a synchronous invocation of the deployed coordinator, locally the same handler in process.
 */
export interface CommandEvent {
  readonly kind: 'sluice.command@1';
  readonly pipeline: string;
  readonly command: OperatorCommand;
}

/** What a command did: whether it changed anything, and what to tell the operator. */
export interface CommandResult {
  readonly kind: 'sluice.command-result@1';
  readonly command: OperatorCommand['kind'];
  readonly changed: boolean;
  readonly message: string;
}

function commandEventSchema() {
  const batch = z.number().check(z.int(), z.positive());
  return z.object({
    kind: z.literal('sluice.command@1'),
    pipeline: z.string(),
    command: z.union([
      z.object({ kind: z.literal('pause'), reason: z.string() }),
      z.object({ kind: z.literal('resume') }),
      z.object({ kind: z.literal('retry'), batch }),
      z.object({ kind: z.literal('skip'), batch, reason: z.string() }),
    ]),
  });
}

/**
 * Whether an event for the coordinator is an operator's command rather than the schedule's tick.
 *
 * @example
 * if (isCommandEvent(event)) return operate(ctx, parseCommandEvent(event, pipeline.name).command);
 */
export function isCommandEvent(raw: unknown): boolean {
  return typeof raw === 'object' && raw !== null && (raw as { kind?: unknown }).kind === 'sluice.command@1';
}

/**
 * Validates an operator's command where it enters the coordinator, and that it is for this pipeline.
 *
 * @example
 * const { command } = parseCommandEvent(event, 'wordcount');
 */
export function parseCommandEvent(raw: unknown, pipeline: string): CommandEvent {
  const parsed = commandEventSchema().safeParse(raw);
  if (!parsed.success) throw new InvalidInputError(`not an operator command: ${parsed.error.message}`);
  if (parsed.data.pipeline !== pipeline) {
    throw new InvalidInputError(`a command for pipeline '${parsed.data.pipeline}' reached '${pipeline}'`);
  }
  const { command } = parsed.data;
  switch (command.kind) {
    case 'pause':
    case 'resume':
      return { ...parsed.data, command };
    case 'retry':
    case 'skip':
      return { ...parsed.data, command: { ...command, batch: batchId(command.batch) } };
  }
}

/**
 * Does what an operator asked. Pausing a paused pipeline, or resuming one that runs, changes
 * nothing and says so; retrying or skipping a batch that is not failed is refused
 * (`InvalidInputError`), as there is nothing to retry or skip.
 *
 * @example
 * const result = await operate(ctx, { kind: 'pause', reason: 'deploying a fix' });
 */
export async function operate(ctx: RuntimeContext, command: OperatorCommand): Promise<CommandResult> {
  const result = (changed: boolean, message: string): CommandResult => ({
    kind: 'sluice.command-result@1',
    command: command.kind,
    changed,
    message,
  });
  switch (command.kind) {
    case 'pause': {
      const at = ctx.clock.now();
      if (await ctx.ledger.pipeline.pause({ at, reason: command.reason })) {
        ctx.log.warn('pipeline paused', { reason: command.reason });
        return result(true, `paused: no batch is sealed until resumed (ingest goes on)`);
      }
      const state = await ctx.ledger.pipeline.get();
      if (!state) throw new InvalidInputError('the pipeline has not started: there is nothing to pause');
      const since = state.paused ? new Date(state.paused.at).toISOString() : 'before';
      return result(false, `already paused since ${since} (${state.paused?.reason ?? ''})`);
    }
    case 'resume': {
      if (await ctx.ledger.pipeline.resume()) {
        ctx.log.info('pipeline resumed', {});
        return result(
          true,
          'resumed: the next coordinator pass seals what is due, the backlog in bounded batches',
        );
      }
      return result(false, 'not paused: nothing to resume');
    }
    case 'retry':
      await retryBatch(ctx, command.batch);
      return result(true, `batch ${command.batch} retried: its missing tasks are started again`);
    case 'skip':
      await skipBatch(ctx, command.batch, command.reason);
      return result(true, `batch ${command.batch} is being skipped: its input goes to dead-letter/skipped/`);
  }
}
