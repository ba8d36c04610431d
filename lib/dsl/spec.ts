import type { ProcessingWindow, WideSpec } from './types';

/**
 * What a keyed stage's kind means for the runtime, read from its spec alone: the runtime switches
 * on `kind` here instead of testing classes or function identities, so a sealed plan says all the
 * runtime needs. Each switch is exhaustive: a new kind is a compile error until it is placed.
 */

/**
 * True for stages that take `[key, value]` records as they come (`reduceByKey` and friends): a
 * keyed record from the stage before enters their shuffle without a tuple being made per record.
 * Stages that key their records themselves (`countByValue`, `count`, `reduce`, joins' tagging,
 * event-time windows' window keys) are false.
 *
 * @example
 * takesPairs(reduceByKey('sum', add).spec); // true
 */
export function takesPairs(spec: WideSpec): boolean {
  switch (spec.kind) {
    case 'sluice.stage/reduceByKey@1':
    case 'sluice.stage/groupByKey@1':
    case 'sluice.stage/combineByKey@1':
    case 'sluice.stage/aggregateByKey@1':
    case 'sluice.stage/reduceByKeyAndWindow@1':
    case 'sluice.stage/groupByKeyAndWindow@1':
    case 'sluice.stage/updateStateByKey@1':
    case 'sluice.stage/mapWithState@1':
      return true;
    case 'sluice.stage/countByValue@1':
    case 'sluice.stage/count@1':
    case 'sluice.stage/reduce@1':
    case 'sluice.stage/countByValueAndWindow@1':
    case 'sluice.stage/countByWindow@1':
    case 'sluice.stage/reduceByWindow@1':
    case 'sluice.stage/window@1':
    case 'sluice.stage/eventTimeWindow@1':
    case 'sluice.stage/join@1':
      return false;
  }
}

/**
 * The processing-time window a stage keeps, if any: every window operator's, and a windowed join's.
 *
 * @example
 * processingWindow(stage.spec)?.slideMs; // 10000
 */
export function processingWindow(spec: WideSpec): ProcessingWindow | undefined {
  switch (spec.kind) {
    case 'sluice.stage/reduceByKeyAndWindow@1':
    case 'sluice.stage/groupByKeyAndWindow@1':
    case 'sluice.stage/countByValueAndWindow@1':
    case 'sluice.stage/countByWindow@1':
    case 'sluice.stage/reduceByWindow@1':
    case 'sluice.stage/window@1':
    case 'sluice.stage/join@1':
      return spec.window;
    case 'sluice.stage/reduceByKey@1':
    case 'sluice.stage/groupByKey@1':
    case 'sluice.stage/combineByKey@1':
    case 'sluice.stage/aggregateByKey@1':
    case 'sluice.stage/countByValue@1':
    case 'sluice.stage/count@1':
    case 'sluice.stage/reduce@1':
    case 'sluice.stage/updateStateByKey@1':
    case 'sluice.stage/mapWithState@1':
    case 'sluice.stage/eventTimeWindow@1':
      return undefined;
  }
}

/**
 * True for an event-time stage: its input moves the pipeline's watermark.
 *
 * @example
 * isEventTime(stage.spec); // true for eventTimeWindow
 */
export function isEventTime(spec: WideSpec | undefined): boolean {
  return spec?.kind === 'sluice.stage/eventTimeWindow@1';
}
