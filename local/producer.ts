import { PutRecordsCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { InvalidInputError } from '../lib/errors';
import { LIMITS } from '../lib/limits';

/** The most records one PutRecords call takes. */
const PUT_RECORDS_MAX = 500;

/** Times the records a PutRecords call failed are sent again before the put gives up. */
const PUT_RECORDS_RETRIES = 10;

/**
 * Stands in for the producers that write a pipeline's input: puts records into a run's Kinesis
 * streams, each with its own partition key (a running count), so records spread over the shards
 * as a producer's usually do.
 *
 * @example
 * const producer = new StreamProducer(clients.kinesis, { lines: 'lines-3f9a' });
 * await producer.put([Buffer.from('to be or not to be')], 'lines');
 */
export class StreamProducer {
  /** Records put so far; the next record's partition key. */
  private sent = 0;

  constructor(
    private readonly kinesis: KinesisClient,
    /** The run's stream of each source stream, by source stream name. */
    private readonly streams: Readonly<Record<string, string>>,
  ) {}

  /**
   * Puts records into the stream of a source, in order. Refuses the whole put before sending
   * anything if one record is over Kinesis's record limit.
   */
  async put(records: readonly Uint8Array[], source: string): Promise<void> {
    const stream = this.streams[source];
    if (!stream) throw new Error(`the pipeline has no source stream '${source}'`);
    // Checked before anything is sent: Kinesis refuses a whole PutRecords call for one such record.
    records.forEach((data, i) => {
      const bytes = data.byteLength + String(this.sent + i).length;
      if (bytes > LIMITS.kinesisRecordBytes) {
        throw new InvalidInputError(
          `record ${i} is ${bytes} bytes with its partition key, over Kinesis's ${LIMITS.kinesisRecordBytes}-byte record limit`,
        );
      }
    });
    for (let i = 0; i < records.length; i += PUT_RECORDS_MAX) {
      let entries = records
        .slice(i, i + PUT_RECORDS_MAX)
        .map((data) => ({ Data: data, PartitionKey: String(this.sent++) }));
      // PutRecords can fail some records and succeed others; only the failed ones are sent again.
      for (let attempt = 0; entries.length > 0; attempt++) {
        const out = await this.kinesis.send(new PutRecordsCommand({ StreamName: stream, Records: entries }));
        if (!out.FailedRecordCount) break;
        if (attempt >= PUT_RECORDS_RETRIES)
          throw new Error(`${out.FailedRecordCount} records could not be put`);
        entries = entries.filter((_, j) => out.Records?.[j]?.ErrorCode);
      }
    }
  }
}
