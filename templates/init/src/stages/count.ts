import { reduceByKeyAndWindow } from 'sluice';

/**
 * Counts each word over the last 30 seconds, every 10 seconds (three batches of 10 s). The inverse
 * function lets each window subtract the batch that leaves it instead of adding up all three.
 */
export default reduceByKeyAndWindow<string, number>('count', (a, b) => a + b, {
  length: '30s',
  slide: '10s',
  inverse: (a, b) => a - b,
  filter: ([, count]) => count > 0,
});
