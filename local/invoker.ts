import type { UsageMeter } from '../lib/cost/usage';
import type { DeployedFunction } from '../lib/deployment';
import type { InvokeTransport } from '../lib/runtime/handlers';
import type { FaultInjector } from './faults';

/** An invocation that ran out of retries: what Lambda would send to the on-failure destination. */
export interface FailedInvocation {
  readonly fn: string;
  readonly event: unknown;
  readonly error: unknown;
}

/** One deployed function, as the local invoker runs it. */
export interface LocalFunction {
  /** Its deployed name: what invocations address. */
  readonly name: string;
  readonly spec: DeployedFunction;
  /** Runs one invocation's event (the function's handler). */
  readonly run: (event: unknown) => Promise<void>;
}

/** Options of the local invoker. */
export interface LocalInvokerOptions {
  /** Invocations running at once, like a function's reserved concurrency. @default 8 */
  readonly concurrency?: number;
  /**
   * Retries after a failed attempt of a task function, like Lambda's asynchronous invocation.
   * Other functions retry as their deployment says (the coordinator does not). @default 2
   */
  readonly retries?: number;
  /** Delay before a retry. Lambda waits a minute or more; locally a few milliseconds. @default 5 */
  readonly retryDelayMs?: number;
  /** Meters every attempt: its requests, and how long it ran (what Lambda bills). */
  readonly meter?: UsageMeter;
}

/**
 * The error Lambda's Invoke gives for a function that does not exist, as the SDK shapes it, so
 * the runtime classifies it as it would on AWS (permanent).
 */
export class ResourceNotFoundError extends Error {
  override readonly name = 'ResourceNotFoundException';
  readonly $metadata = { httpStatusCode: 404 };
}

/** The error IAM gives a caller whose role may not invoke a function. */
export class InvokeDeniedError extends Error {
  override readonly name = 'AccessDeniedException';
  readonly $metadata = { httpStatusCode: 403 };
}

interface Queued {
  readonly fn: LocalFunction;
  readonly payload: string;
  readonly settled: () => void;
  attempts: number;
}

/**
 * Stands in for Lambda's asynchronous invoke: events are serialized to JSON (as Lambda does),
 * queued, run with a concurrency limit, retried on failure, and kept when they run out of retries.
 * A function's invocation is refused as Lambda and IAM would refuse it: a name that is not a
 * deployed function, or a target the caller's role may not invoke. With faults, each event is
 * delivered twice and attempts crash at random.
 *
 * @example
 * const invoker = new LocalInvoker(faults);
 * invoker.register({ name: 'wc-count', spec, run: (event) => handlers.reduce(event) });
 */
export class LocalInvoker {
  private readonly functions = new Map<string, LocalFunction>();
  private readonly queue: Queued[] = [];
  private running = 0;
  private waiters: (() => void)[] = [];
  private timers = 0;
  readonly failed: FailedInvocation[] = [];
  /** Invocations refused before they were queued (a missing function or permission). */
  readonly refused: string[] = [];
  /** Invocations one function made of another, by `caller -> target` function id. */
  readonly calls = new Map<string, number>();
  invocations = 0;

  constructor(
    private readonly faults: FaultInjector,
    private readonly options: LocalInvokerOptions = {},
  ) {}

  /** Makes a function invocable by its deployed name. */
  register(fn: LocalFunction): void {
    this.functions.set(fn.name, fn);
  }

  /** The deployed function of a name, if there is one. */
  function(name: string): LocalFunction | undefined {
    return this.functions.get(name);
  }

  /**
   * What a function's invoker sends through: the checks Lambda and the caller's role make, then the
   * asynchronous queue (the caller does not wait for the invocation, as with `InvocationType: Event`).
   */
  transportFor(caller: DeployedFunction): InvokeTransport {
    return (name, payload) => {
      const target = this.functions.get(name);
      if (!target) {
        this.refused.push(`${caller.id} -> ${name}`);
        return Promise.reject(new ResourceNotFoundError(`Function not found: ${name}`));
      }
      if (!caller.invokes.includes(target.spec.id)) {
        this.refused.push(`${caller.id} -> ${target.spec.id}`);
        return Promise.reject(
          new InvokeDeniedError(
            `function '${caller.id}' is not authorized to perform lambda:InvokeFunction on '${name}' (${target.spec.id})`,
          ),
        );
      }
      const call = `${caller.id} -> ${target.spec.id}`;
      this.calls.set(call, (this.calls.get(call) ?? 0) + 1);
      void this.enqueue(target, payload);
      return Promise.resolve();
    };
  }

  /**
   * Invokes a function from outside the pipeline (the scheduler's tick, the harness). Resolves when
   * the invocation and its copies and retries have finished, whether they succeeded or not.
   */
  submit(name: string, event: unknown): Promise<void> {
    const target = this.functions.get(name);
    if (!target) return Promise.reject(new ResourceNotFoundError(`Function not found: ${name}`));
    return this.enqueue(target, JSON.stringify(event));
  }

  /** Resolves when nothing is queued, running or waiting to be retried. */
  async idle(): Promise<void> {
    if (this.isIdle()) return;
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private enqueue(fn: LocalFunction, payload: string): Promise<void> {
    const copies = this.faults.duplicate ? 2 : 1;
    let left = copies;
    return new Promise<void>((resolve) => {
      const settled = (): void => {
        left--;
        if (left === 0) resolve();
      };
      for (let i = 0; i < copies; i++) this.queue.push({ fn, payload, settled, attempts: 0 });
      this.pump();
    });
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

  private retriesOf(fn: LocalFunction): number {
    const task = fn.spec.kind === 'transform' || fn.spec.kind === 'reduce';
    return task ? (this.options.retries ?? fn.spec.asyncRetries ?? 2) : (fn.spec.asyncRetries ?? 0);
  }

  private async attempt(job: Queued): Promise<void> {
    job.attempts++;
    this.invocations++;
    const run = (): Promise<void> => this.faults.run(() => job.fn.run(JSON.parse(job.payload) as unknown));
    const { meter } = this.options;
    try {
      await (meter ? meter.invocation(job.fn.spec.kind, run) : run());
      job.settled();
    } catch (error) {
      if (job.attempts > this.retriesOf(job.fn)) {
        this.failed.push({ fn: job.fn.name, event: JSON.parse(job.payload) as unknown, error });
        job.settled();
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
