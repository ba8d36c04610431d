import { readFileSync, writeFileSync } from 'node:fs';
import { GCProfiler, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** What a span of the bench (a batch) held in memory, bytes. */
export interface MemoryReading {
  /** The V8 heap in use when the span started, after a full GC. */
  readonly heapStart: number;
  /**
   * The V8 heap's high-water mark over the span, exact: the heap in use only falls at a garbage
   * collection, so its peak is the largest size seen just before one (V8's GC profiler reports
   * each) or at the span's end.
   */
  readonly heapPeak: number;
  /**
   * The most the heap held just after a collection over the span (or at its start): garbage the
   * collection found is left out, so this is near the live data, what decides running out of
   * memory. An upper bound on it: a minor collection leaves the old generation's garbage in place.
   */
  readonly heapAfterGcPeak: number;
  /** Memory outside the V8 heap held by JavaScript objects (buffers) at the same moments, its peak. */
  readonly externalPeak: number;
  /** The same when the span started, after a full GC. */
  readonly externalStart: number;
  /** Resident memory of the process when the span started. */
  readonly rssStart: number;
  /** The process's resident high-water mark over the span (see `rssPeakSource`). */
  readonly rssPeak: number;
  /**
   * `VmHWM`: Linux's own high-water mark of the process, reset when the span starts (exact).
   * `maxRSS`: the process's high-water since it started (where the reset is not allowed).
   */
  readonly rssPeakSource: 'VmHWM' | 'maxRSS';
}

/**
 * A full GC, so a span starts without the garbage of the one before. `--expose-gc` cannot be
 * passed through `npm run`, so it is set at run time; V8 then exposes `gc` in new contexts.
 */
function gcFunction(): () => void {
  setFlagsFromString('--expose-gc');
  const gc: unknown = runInNewContext('gc');
  return typeof gc === 'function' ? (gc as () => void) : () => undefined;
}

function vmHwmBytes(): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Resets Linux's resident high-water mark of this process to its current resident size. */
function resetVmHwm(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return vmHwmBytes() !== undefined;
  } catch {
    return false;
  }
}

interface Peaks {
  heap: number;
  afterGc: number;
  external: number;
  rss: number;
}

/**
 * Watches the memory of this process over a span (a batch). `mark()` fixes the peaks so far, so
 * that what the harness does after the last task (reading the batch's output back) is left out.
 *
 * @example
 * const watch = new MemoryWatch();
 * watch.start();
 * await work(() => watch.mark());
 * const { heapPeak } = watch.stop();
 */
export class MemoryWatch {
  private readonly gc = gcFunction();
  private profiler: GCProfiler | undefined;
  private atStart: { heap: number; external: number; rss: number; exact: boolean } = {
    heap: 0,
    external: 0,
    rss: 0,
    exact: false,
  };
  private peaks: Peaks = { heap: 0, afterGc: 0, external: 0, rss: 0 };
  private marked: Peaks | undefined;

  start(): void {
    this.gc();
    const { rss, heapUsed, external } = process.memoryUsage();
    this.atStart = { heap: heapUsed, external, rss, exact: resetVmHwm() };
    this.peaks = { heap: heapUsed, afterGc: heapUsed, external, rss };
    this.marked = undefined;
    this.profiler = new GCProfiler();
    this.profiler.start();
  }

  /** The peaks as of now: what `stop()` reports, unless marked again. */
  mark(): void {
    if (!this.profiler) return;
    this.collect();
    this.marked = { ...this.peaks };
    this.profiler = new GCProfiler();
    this.profiler.start();
  }

  stop(): MemoryReading {
    if (this.profiler && !this.marked) this.collect();
    this.profiler?.stop();
    this.profiler = undefined;
    const peaks = this.marked ?? this.peaks;
    return {
      heapStart: this.atStart.heap,
      heapPeak: peaks.heap,
      heapAfterGcPeak: peaks.afterGc,
      externalPeak: peaks.external,
      externalStart: this.atStart.external,
      rssStart: this.atStart.rss,
      rssPeak: peaks.rss,
      rssPeakSource: this.atStart.exact ? 'VmHWM' : 'maxRSS',
    };
  }

  /** The peaks of the GCs since the profiler started, and of now. */
  private collect(): void {
    const { statistics } = this.profiler?.stop() ?? { statistics: [] };
    const { heapUsed, external } = process.memoryUsage();
    const peaks = this.peaks;
    peaks.heap = Math.max(peaks.heap, heapUsed);
    peaks.external = Math.max(peaks.external, external);
    for (const { beforeGC, afterGC } of statistics) {
      peaks.heap = Math.max(peaks.heap, beforeGC.heapStatistics.usedHeapSize);
      peaks.afterGc = Math.max(peaks.afterGc, afterGC.heapStatistics.usedHeapSize);
      peaks.external = Math.max(peaks.external, beforeGC.heapStatistics.externalMemory);
    }
    peaks.rss = this.atStart.exact ? (vmHwmBytes() ?? 0) : process.resourceUsage().maxRSS * 1024;
  }
}
