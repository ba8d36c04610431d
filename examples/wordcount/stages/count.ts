import { reduceByKey } from 'sluice';

/** Sums the counts of each word in the batch; combined inside each transform task first. */
export default reduceByKey<string, number>('count', (a, b) => a + b);
