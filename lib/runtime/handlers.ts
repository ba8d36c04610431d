import type { AnyPipeline } from '../dsl/pipeline';
import { ConfigError, InvalidInputError } from '../errors';
import type { StageId } from '../ids';
import {
  configFromEnv,
  createRuntimeContext,
  type Invoker,
  type RuntimeConfig,
  type RuntimeContext,
  type RuntimeDeps,
} from './context';
import { coordinate, sleepUntilDue, sleepWhileIdle, type CoordinatorReport } from './coordinator';
import { parseKinesisEvent, parseTaskEvent, parseTickEvent, type TaskEvent, type TickEvent } from './events';
import { ingest, type IngestResult } from './ingest';
import { handleTask } from './tasks';
import { isCommandEvent, operate, parseCommandEvent, type CommandResult } from './operator';

/** Sends an asynchronous invocation to a function by its deployed name: Lambda's Invoke, or the local invoker. */
export type InvokeTransport = (functionName: string, payload: string) => Promise<void>;

/**
 * Starts tasks by the function ids of the plan, through the names the deployment configured. A
 * phase function that is not configured is a `ConfigError`: the deployment did not mean this
 * function to invoke it (and its role would refuse it anyway).
 *
 * @example
 * const invoker = new ConfiguredInvoker(config, async (name, payload) => lambda.send(...));
 */
export class ConfiguredInvoker implements Invoker {
  constructor(
    private readonly config: RuntimeConfig,
    private readonly send: InvokeTransport,
  ) {}

  async invoke(fn: StageId, event: TaskEvent): Promise<void> {
    const name = this.config.functions[fn];
    if (!name) throw new ConfigError(`no function is configured for phase function '${fn}'`);
    await this.send(name, JSON.stringify(event));
  }

  async wake(tick: TickEvent): Promise<void> {
    const name = this.config.functions.coordinator;
    if (!name) throw new ConfigError('no coordinator function is configured to wake');
    await this.send(name, JSON.stringify(tick));
  }
}

/**
 * What a deployed function runs with, besides its pipeline: the services of a runtime context, with
 * its configuration read from the environment and its invoker built on a transport.
 */
export interface FunctionDeps extends Omit<RuntimeDeps, 'config' | 'invoker'> {
  /** The function's environment: what the deployment set (see `functionEnvironment`). */
  readonly env: NodeJS.ProcessEnv;
  readonly send: InvokeTransport;
}

/**
 * The handlers of a pipeline's functions, each parsing its event once and calling the executor.
 * Function-typed properties, not methods: callers take each handler detached from this object.
 */
export interface PipelineHandlers {
  readonly ctx: RuntimeContext;
  readonly ingest: (event: unknown) => Promise<IngestResult>;
  /**
   * One coordinator invocation: passes until `remainingMs()` (less a margin) would not cover the
   * wait for the next batch. Batch intervals under a minute: EventBridge Scheduler's minimum rate
   * is one minute, so one invocation loops, sealing each batch at its boundary.
   */
  readonly coordinator: (
    event: unknown,
    remainingMs: () => number,
    afterPass?: (report: CoordinatorReport) => void,
  ) => Promise<CoordinatorOutcome>;
  /** Phase 0 tasks: segment slices in, one shuffle file (or the output) out. */
  readonly transform: (event: unknown) => Promise<void>;
  /** Phase 1+ tasks: one reduce partition's shuffle runs in, a shuffle file or the output out. */
  readonly reduce: (event: unknown) => Promise<void>;
}

/**
 * What one coordinator invocation did: the passes of a tick, or the result of an operator's
 * command.
 */
export type CoordinatorOutcome =
  { readonly kind: 'sluice.passes@1'; readonly passes: readonly CoordinatorReport[] } | CommandResult;

/** How long before its timeout the looping coordinator stops starting new passes. */
export const COORDINATOR_MARGIN_MS = 7_000;

/**
 * Builds the handlers of a pipeline's functions from one function's environment. Lambda
 * (`lib/runtime/lambda.ts`) and the local runtime both run these, so a function behaves the same
 * wherever it runs: only the clients, the transport of invocations and the clock differ.
 *
 * @example
 * const handlers = createHandlers(pipeline, { env: process.env, clients, send });
 * await handlers.reduce(event);
 */
export function createHandlers(pipeline: AnyPipeline, deps: FunctionDeps): PipelineHandlers {
  const { env, send, ...services } = deps;
  const config = configFromEnv(env);
  const ctx = createRuntimeContext(pipeline, {
    ...services,
    config,
    invoker: new ConfiguredInvoker(config, send),
  });
  const task = async (event: unknown, kind: 'transform' | 'reduce'): Promise<void> => {
    const parsed = parseTaskEvent(event);
    if ((parsed.phase === 0) !== (kind === 'transform')) {
      throw new InvalidInputError(`the ${kind} function got a task of phase ${parsed.phase}`, {
        batch: parsed.batch,
      });
    }
    await handleTask(ctx, parsed);
  };
  return {
    ctx,
    ingest: (event) => ingest(ctx, parseKinesisEvent(event)),
    async coordinator(event, remainingMs, afterPass) {
      if (isCommandEvent(event)) return operate(ctx, parseCommandEvent(event, pipeline.name).command);
      const tick = parseTickEvent(event, pipeline.name);
      const reports: CoordinatorReport[] = [];
      const outcome = (): CoordinatorOutcome => ({ kind: 'sluice.passes@1', passes: reports });
      for (;;) {
        const report = await coordinate(ctx, {
          ...(tick.stuckBefore === undefined ? {} : { stuckBefore: tick.stuckBefore }),
          // Stuck means minutes without progress: a tick's first pass is enough, and an invocation
          // ingest started to seal a batch leaves it to the ticks.
          sweep: reports.length === 0 && tick.sweep !== false,
        });
        reports.push(report);
        afterPass?.(report);
        // Halted or paused, there is nothing to seal until an operator acts: the next tick (a minute
        // on) looks again, rather than a loop of passes that find the next batch overdue at once.
        if (report.halted || report.paused) return outcome();
        if (ctx.config.coordinatorWaits === false) {
          // It never waits for a boundary: it leaves the next one to the first ingest after it
          // (or to the next tick), and only goes on when the next batch is due already.
          if (await sleepUntilDue(ctx, report.nextBatchTime)) return outcome();
          if (remainingMs() < COORDINATOR_MARGIN_MS) return outcome();
          continue;
        }
        const wait = report.nextBatchTime - ctx.clock.now();
        if (remainingMs() - Math.max(wait, 0) < COORDINATOR_MARGIN_MS) return outcome();
        // An idle stream is not worth an invocation waiting out the minute: the next tick seals
        // the batches that come due meanwhile, and ingest wakes a coordinator when records come.
        if (await sleepWhileIdle(ctx)) return outcome();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
    },
    transform: (event) => task(event, 'transform'),
    reduce: (event) => task(event, 'reduce'),
  };
}
