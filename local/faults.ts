import { AsyncLocalStorage } from 'node:async_hooks';
import { aroundRequests } from '../lib/middleware';
import { seededRandom } from './random';

/**
 * Faults the local runtime injects, so that tests and `sluice local run --faults` exercise the
 * exactly-once machinery the way Lambda's at-least-once delivery and crashes would.
 */
export interface FaultOptions {
  /** Deliver every invocation twice, concurrently. @default false */
  readonly duplicate?: boolean;
  /**
   * Probability that an invocation attempt crashes: before it starts, between two of its writes,
   * or after it finished its work but before it reported success. Async retries re-drive it. @default 0
   */
  readonly crash?: number;
  /**
   * Delay added to every S3 and DynamoDB request, in ms: a slow endpoint (a loaded LocalStack, a
   * remote region), so that wall-clock runs meet passes that take longer than a batch interval.
   * @default 0
   */
  readonly latencyMs?: number;
  /** Seed of the fault dice, for reproducible runs. @default 1 */
  readonly seed?: number;
}

/** The error an injected crash throws. Nothing in the runtime catches it, as nothing catches a real crash. */
export class InjectedCrash extends Error {
  override readonly name = 'InjectedCrash';
}

/**
 * Parses `--faults duplicate,crash=0.2` into fault options.
 *
 * @example
 * parseFaults('duplicate,crash=0.1'); // { duplicate: true, crash: 0.1 }
 * parseFaults('latency=40'); // { latencyMs: 40 }
 */
export function parseFaults(text: string | undefined, seed?: number): FaultOptions {
  const options: { duplicate?: boolean; crash?: number; latencyMs?: number; seed?: number } =
    seed === undefined ? {} : { seed };
  for (const part of (text ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [name, value] = part.split('=');
    if (name === 'duplicate') options.duplicate = true;
    else if (name === 'crash') {
      const p = value === undefined ? 0.1 : Number(value);
      if (!(p >= 0 && p < 1))
        throw new RangeError(`crash probability must be in [0, 1), got '${String(value)}'`);
      options.crash = p;
    } else if (name === 'latency') {
      const ms = Number(value);
      if (!Number.isSafeInteger(ms) || ms < 0 || ms > 60_000) {
        throw new RangeError(
          `latency must be a whole number of milliseconds up to 60000, got '${String(value)}'`,
        );
      }
      options.latencyMs = ms;
    } else {
      throw new RangeError(
        `unknown fault '${String(name)}': use duplicate, crash, crash=<probability> or latency=<ms>`,
      );
    }
  }
  return options;
}

/** Where one attempt will crash, decided when it starts. */
type CrashPlan = { readonly at: 'before' | 'after' } | { readonly at: 'write'; afterWrites: number };

/** Writes that count as "a write" for a crash between writes. */
const WRITE_COMMANDS = new Set([
  'PutObjectCommand',
  'PutCommand',
  'UpdateCommand',
  'PutItemCommand',
  'UpdateItemCommand',
]);

/**
 * Rolls the fault dice (a seeded PRNG, so a run can be repeated) and carries each attempt's crash
 * plan through its async calls, where the SDK middleware finds it.
 */
export class FaultInjector {
  private readonly random: () => number;
  private readonly attempt = new AsyncLocalStorage<{ plan: CrashPlan | undefined; crashed: boolean }>();
  crashes = 0;

  constructor(readonly options: FaultOptions = {}) {
    this.random = seededRandom(options.seed ?? 1);
  }

  get duplicate(): boolean {
    return this.options.duplicate === true;
  }

  /** Runs one attempt under its crash plan. */
  async run<T>(attempt: () => Promise<T>): Promise<T> {
    const p = this.options.crash ?? 0;
    let plan: CrashPlan | undefined;
    if (p > 0 && this.random() < p) {
      const where = this.random();
      plan =
        where < 1 / 3
          ? { at: 'before' }
          : where < 2 / 3
            ? { at: 'after' }
            : { at: 'write', afterWrites: 1 + Math.floor(this.random() * 3) };
    }
    if (plan?.at === 'before') this.crash('before it started');
    const result = await this.attempt.run({ plan, crashed: false }, attempt);
    if (plan?.at === 'after') this.crash('after its work, before reporting success');
    return result;
  }

  /**
   * Called by the SDK middleware before each request: a crashed process sends nothing more, so an
   * attempt that crashed cannot record its own failure on the way out (a handler that catches the
   * crash finds every later request failing the same way).
   */
  beforeRequest(commandName: string): void {
    if (this.attempt.getStore()?.crashed) {
      throw new InjectedCrash(`injected crash: ${commandName} after the attempt crashed`);
    }
  }

  /** Called by the SDK middleware after each successful request. */
  afterRequest(commandName: string): void {
    const store = this.attempt.getStore();
    const plan = store?.plan;
    if (!plan || plan.at !== 'write' || !WRITE_COMMANDS.has(commandName)) return;
    plan.afterWrites--;
    if (plan.afterWrites === 0) {
      store.plan = undefined;
      store.crashed = true;
      this.crash(`after a ${commandName}`);
    }
  }

  private crash(where: string): never {
    this.crashes++;
    throw new InjectedCrash(`injected crash ${where}`);
  }
}

/**
 * Lets the injector crash an attempt between two writes, after a write the store has accepted,
 * which is where a real crash hurts most.
 */
export function addFaultMiddleware(client: unknown, injector: FaultInjector): void {
  aroundRequests(client, 'sluiceFaultInjection', async (command, send) => {
    injector.beforeRequest(command);
    const latency = injector.options.latencyMs ?? 0;
    if (latency > 0) await new Promise((resolve) => setTimeout(resolve, latency));
    const result = await send();
    injector.afterRequest(command);
    return result;
  });
}
