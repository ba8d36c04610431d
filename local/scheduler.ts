import { setTimeout as sleep } from 'node:timers/promises';
import type { LocalPoller } from './poller';

/** Pause between two polls of the streams: records reach ingest promptly without a busy loop. */
const POLL_PAUSE_MS = 50;

/** How far past a batch boundary a pass runs, so the batch that ends there is due when it looks. */
const PAST_BOUNDARY_MS = 5;

/**
 * The longest wait between two coordinator passes, whatever the interval: `stop()` then waits at
 * most this long for the loop, and a pass that gave up is re-driven soon.
 */
const MAX_PASS_WAIT_MS = 1_000;

/**
 * What runs a system-clock run in the background: EventBridge's schedule (a coordinator pass at
 * each batch boundary) and the event-source mappings (the pollers, polling all the time). Passes
 * run one at a time, as a pass may take longer than an interval on a slow endpoint.
 *
 * @example
 * const scheduler = new LocalScheduler(pollers, () => invoker.submit(coordinator, tick), 1_000);
 * scheduler.start();
 * await scheduler.stop();
 */
export class LocalScheduler {
  private loops: { readonly stop: () => Promise<void> } | undefined;

  constructor(
    private readonly pollers: readonly LocalPoller[],
    /** One coordinator pass; resolves when it has finished. */
    private readonly pass: () => Promise<void>,
    private readonly intervalMs: number,
  ) {}

  /** Starts the pass and poll loops, unless they are running already. */
  start(): void {
    if (this.loops) return;
    // A property, not a `let`: TypeScript would narrow a `let` to `false` inside the loops.
    const run = { stopped: false };
    const loops = [
      (async () => {
        while (!run.stopped) {
          // A poll that fails is tried again next round, as the mapping retries a batch.
          await Promise.all(this.pollers.map((p) => p.pollOnce().catch(() => 0)));
          await sleep(POLL_PAUSE_MS);
        }
      })(),
      (async () => {
        while (!run.stopped) {
          await this.pass();
          const untilBoundary = this.intervalMs - (Date.now() % this.intervalMs);
          await sleep(Math.min(untilBoundary + PAST_BOUNDARY_MS, MAX_PASS_WAIT_MS));
        }
      })(),
    ];
    this.loops = {
      stop: async () => {
        run.stopped = true;
        await Promise.all(loops);
      },
    };
  }

  /** Stops the loops and waits for their last pass; nothing when they are not running. */
  async stop(): Promise<void> {
    const loops = this.loops;
    this.loops = undefined;
    await loops?.stop();
  }
}
