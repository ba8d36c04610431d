import { kinesis, pipeline, print, schema } from 'sluice';
import { Reading } from './reading';
import { average, totals } from './stages/average';
import readings from './stages/readings';

/**
 * Average temperature per sensor per batch, from JSON readings validated by a zod schema: a
 * reading that is not valid JSON or does not match goes to the dead-letter prefix with the reason.
 */
export default pipeline({
  name: 'temperature',
  batchInterval: '10s',
  source: kinesis({ stream: 'readings', decode: schema(Reading) }),
  stages: [readings, totals, average],
  sinks: [print({ top: 20 })],
});
