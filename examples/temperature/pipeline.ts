import { kinesis, pipeline, print, schema } from 'sluice';
import { Reading } from './reading';
import bySensor from './stages/by-sensor';
import perMinute from './stages/per-minute';

/**
 * Average temperature per sensor per minute of event time, from JSON readings validated by a zod
 * schema: a reading that is not valid JSON or does not match goes to the dead-letter prefix with
 * the reason, and so does one that arrives after its minute was output.
 */
export default pipeline({
  name: 'temperature',
  batchInterval: '10s',
  source: kinesis({ stream: 'readings', decode: schema(Reading) }),
  stages: [bySensor, perMinute],
  sinks: [print({ top: 20 })],
});
