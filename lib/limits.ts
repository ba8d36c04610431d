/**
 * The AWS limits sluice checks itself, before a service would refuse a request: a refusal from AWS
 * arrives as an error for a whole request (a batch of records, a partition's state), while a check
 * here can refuse the one record, key or value that is over, with a reason, and let the rest go on.
 * docs/architecture.md lists each limit and what happens at it.
 */
export const LIMITS = Object.freeze({
  /**
   * Kinesis: the largest record, data plus partition key (1 MiB). A producer must not send more;
   * `sluice local run` refuses such an input line with its line number.
   */
  kinesisRecordBytes: 1024 * 1024,
  /** DynamoDB: the largest item, attribute names and values together (400 KB). */
  dynamoItemBytes: 400 * 1024,
  /**
   * The largest encoded state of one key (its key and value). A chunk item holds at least one key,
   * so one key must fit in an item with room left for the item's other attributes; a key whose
   * state grows past this is refused (dead-lettered as `state`), never written.
   */
  stateEntryBytes: 350 * 1024,
  /** Lambda: the largest asynchronous invocation payload (1 MB). Task events are a few hundred bytes. */
  lambdaAsyncPayloadBytes: 1024 * 1024,
});
