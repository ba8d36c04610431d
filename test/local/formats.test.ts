import { describe, expect, it } from 'vitest';
import { DataFormatError } from '../../lib/errors';
import { shardId, stageId } from '../../lib/ids';
import { coordinate } from '../../lib/runtime/coordinator';
import { testPipeline } from '../../local/testing';
import { runningCount } from '../support/pipelines';
import { closeAfterEach } from '../support/runs';

/**
 * Data written in a format this code does not read is refused before it is read, on the emulator:
 * what architecture section 3 ("Versions of what is persisted") promises.
 */

const track = closeAfterEach();

describe('persisted data in another format', () => {
  it('a segment in another format is refused by the coordinator before it seals it', async () => {
    // Arrange: a segment registered by an ingest of another format version.
    const t = track(testPipeline(runningCount));
    const run = await t.local();
    const ingest = run.context('ingest');
    const shard = shardId('words/shardId-000000000000');
    await ingest.ledger.segments.registerShard(shard);
    await ingest.ledger.segments.register({
      shard,
      firstSeq: '100',
      lastSeq: '101',
      key: 'segments/words/shardId-000000000000/100.seg',
      records: 2,
      bytes: 40,
      blocks: '0:2',
      format: 'sluice.segment@2',
    });
    const deployed = run.context('coordinator');
    const ahead = deployed.clock.now() + runningCount.batchIntervalMs;

    // Act
    const pass = coordinate({ ...deployed, clock: { now: () => ahead } });

    // Assert
    await expect(pass).rejects.toThrow(DataFormatError);
    await expect(pass).rejects.toThrow(/100\.seg is in sluice\.segment@2; this code reads sluice\.segment@1/);
    expect((await deployed.ledger.pipeline.get())?.lastSealed).toBe(0);
  });

  it('state whose chunks are in another format fails its batch before a chunk is decoded', async () => {
    // Arrange: a partition's state at batch 1, then its head marked with another chunk format.
    const t = track(testPipeline(runningCount, { settings: { partitions: 1 } }));
    const run = await t.local();
    await t.push(['a b', 'a']).advance();
    const state = run.context('running').state;
    const ref = { stage: stageId('running'), partition: 0, since: 1 };
    const head = await state.head(ref);
    await state.commit(ref, head, { ...head, format: 'sluice.chunk@2' });

    // Act
    const second = await t.push(['a']).advance();

    // Assert
    expect(second.status).toBe('failed');
    expect(second.failure).toMatch(/DataFormatError/);
    expect(second.failure).toMatch(/state#running#0 is in sluice\.chunk@2; this code reads sluice\.chunk@1/);
  });
});
