import { transform } from 'sluice';
import type { Reading } from '../reading';

/** Keys each reading by sensor, carrying (sum, count) so the average can be combined map-side. */
export default transform<Reading, string, [number, number]>('by-sensor', (reading, emit) => {
  emit(reading.sensor, [reading.celsius, 1]);
});
