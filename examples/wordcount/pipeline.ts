import { kinesis, pipeline, print, s3Jsonl, utf8 } from 'sluice';
import count from './stages/count';
import tokenize from './stages/tokenize';

/** Word count, the program the Spark Streaming guide opens with: words per batch of lines. */
export default pipeline({
  name: 'wordcount',
  batchInterval: '10s',
  source: kinesis({ stream: 'lines', decode: utf8 }),
  stages: [tokenize, count],
  sinks: [s3Jsonl({ prefix: 'wordcount/counts' }), print({ top: 10 })],
});
