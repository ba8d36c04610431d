import { kinesis, pipeline, print, s3Jsonl, utf8 } from 'sluice';
import count from './stages/count.js';
import tokenize from './stages/tokenize.js';

/** Words counted over a sliding 30-second window of a stream of lines. */
export default pipeline({
  name: '{{pipelineName}}',
  batchInterval: '10s',
  source: kinesis({ stream: 'lines', decode: utf8 }),
  stages: [tokenize, count],
  sinks: [s3Jsonl({ prefix: 'counts' }), print({ top: 10 })],
});
