import { eventTimeWindow } from 'sluice';
import type { Reading } from '../reading';

/**
 * The average temperature of each sensor in each minute of event time (when the reading was
 * taken, not when it arrived). A minute is output once the watermark, the latest reading time
 * seen minus 30 seconds of allowed lateness, has passed its end; a reading for a minute already
 * output is late and goes to the dead-letter prefix. (sum, count) is combined map-side.
 */
export default eventTimeWindow<string, Reading, [number, number], number>('per-minute', {
  timestamp: ([, reading]) => Date.parse(reading.at),
  length: '1m',
  lateness: '30s',
  aggregate: {
    create: (r) => [r.celsius, 1],
    add: ([sum, n], r) => [sum + r.celsius, n + 1],
    merge: ([s1, n1], [s2, n2]) => [s1 + s2, n1 + n2],
    result: ([sum, n]) => Math.round((sum / n) * 100) / 100,
  },
});
