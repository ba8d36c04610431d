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
 * What runs a system-clock run in the background: EventBridge's schedule and the event-source
 * mappings (the pollers, polling all the time). For a coordinator that waits for boundaries, a pass
 * at each batch boundary (standing in for its loop), and at least every second so a pass that gave
 * up is re-driven soon; for one that does not (`ticksOnly`), a pass every `intervalMs` (the
 * schedule's minute) and nothing between: ingest wakes a coordinator after each boundary. Passes
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
    /** Pass only every `intervalMs`, as the schedule ticks, not at batch boundaries. @default false */
    private readonly ticksOnly = false,
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
        // The first pass at once, as a deployment's first tick; then at the schedule's rate.
        let nextTick = Date.now();
        while (!run.stopped) {
          if (!this.ticksOnly || Date.now() >= nextTick) {
            await this.pass();
            nextTick = Date.now() + this.intervalMs;
          }
          const untilBoundary = this.ticksOnly
            ? Math.max(nextTick - Date.now(), 0)
            : this.intervalMs - (Date.now() % this.intervalMs) + PAST_BOUNDARY_MS;
          await sleep(Math.min(untilBoundary, MAX_PASS_WAIT_MS));
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
