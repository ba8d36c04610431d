import type { StageId } from '../lib/ids';
import type { Invoker } from '../lib/runtime/context';
import type { TaskEvent } from '../lib/runtime/events';
import type { FaultInjector } from './faults';

/** An invocation that ran out of retries: what Lambda would send to the on-failure destination. */
export interface FailedInvocation {
  readonly fn: string;
  readonly event: unknown;
  readonly error: unknown;
}

/** Runs an invocation's handler. */
export type LocalHandler = (fn: string, event: unknown) => Promise<void>;

/** Options of the local invoker. */
export interface LocalInvokerOptions {
  /** Invocations running at once, like a function's reserved concurrency. @default 8 */
  readonly concurrency?: number;
  /** Retries after a failed attempt, like Lambda's asynchronous invocation. @default 2 */
  readonly retries?: number;
  /** Delay before a retry. Lambda waits a minute or more; locally a few milliseconds. @default 5 */
  readonly retryDelayMs?: number;
}

interface Queued {
  readonly fn: string;
  readonly payload: string;
  attempts: number;
}

/**
 * Stands in for Lambda's asynchronous invoke: events are serialized to JSON (as Lambda does),
 * queued, run with a concurrency limit, retried on failure, and kept when they run out of retries.
 * With faults, each event is delivered twice and attempts crash at random.
 *
 * @example
 * const invoker = new LocalInvoker((fn, event) => handlers[fn](event), faults);
 */
export class LocalInvoker implements Invoker {
  private readonly queue: Queued[] = [];
  private running = 0;
  private waiters: (() => void)[] = [];
  private timers = 0;
  readonly failed: FailedInvocation[] = [];
  invocations = 0;

  constructor(
    private readonly handler: LocalHandler,
    private readonly faults: FaultInjector,
    private readonly options: LocalInvokerOptions = {},
  ) {}

  async invoke(fn: StageId, event: TaskEvent): Promise<void> {
    this.submit(fn, event);
  }

  /** Queues an invocation of any local function (tasks, the coordinator). */
  submit(fn: string, event: unknown): void {
    const payload = JSON.stringify(event);
    const copies = this.faults.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) this.queue.push({ fn, payload, attempts: 0 });
    this.pump();
  }

  /** Resolves when nothing is queued, running or waiting to be retried. */
  async idle(): Promise<void> {
    if (this.isIdle()) return;
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.queue.length === 0 && this.running === 0 && this.timers === 0;
  }

  private pump(): void {
    const limit = this.options.concurrency ?? 8;
    while (this.running < limit && this.queue.length > 0) {
      const job = this.queue.shift() as Queued;
      this.running++;
      void this.attempt(job).finally(() => {
        this.running--;
        this.pump();
        if (this.isIdle()) {
          const waiters = this.waiters;
          this.waiters = [];
          for (const resolve of waiters) resolve();
        }
      });
    }
  }

  private async attempt(job: Queued): Promise<void> {
    job.attempts++;
    this.invocations++;
    try {
      await this.faults.run(() => this.handler(job.fn, JSON.parse(job.payload) as unknown));
    } catch (error) {
      if (job.attempts > (this.options.retries ?? 2)) {
        this.failed.push({ fn: job.fn, event: JSON.parse(job.payload) as unknown, error });
        return;
      }
      this.timers++;
      setTimeout(() => {
        this.timers--;
        this.queue.push(job);
        this.pump();
      }, this.options.retryDelayMs ?? 5);
    }
  }
}
