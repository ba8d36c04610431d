import { map, reduceByKey, type Pair } from 'sluice';

/** Adds up (sum, count) per sensor: associative, so it is combined inside each transform task. */
export const totals = reduceByKey<string, [number, number]>('totals', (a, b) => [a[0] + b[0], a[1] + b[1]]);

/** Turns (sum, count) into the batch's average, rounded to a hundredth of a degree. */
export const average = map<Pair<string, [number, number]>, Pair<string, number>>(
  'average',
  ([sensor, [sum, n]]) => [sensor, Math.round((sum / n) * 100) / 100],
);
