import pipeline from 'sluice-pipeline';
import { lambdaHandlers } from '../lib/runtime/lambda';

/** The ingest function: parses its event once and calls the shared executor in lib/. */
export const handler = lambdaHandlers(pipeline).ingest;
