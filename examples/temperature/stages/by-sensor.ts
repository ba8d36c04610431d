import { map, type Pair } from 'sluice';
import type { Reading } from '../reading';

/** Keys each reading by its sensor. */
export default map<Reading, Pair<string, Reading>>('by-sensor', (reading) => [reading.sensor, reading]);
