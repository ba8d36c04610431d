import type { UsageMeter } from '../lib/cost/usage';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { DeployedFunction } from '../lib/deployment';
import { shardId } from '../lib/ids';
import type { PipelineHandlers } from '../lib/runtime/handlers';
import type { Ledger } from '../lib/storage/ledger/ledger';
import type { AccessGuard } from './access';
import type { FaultInjector } from './faults';
import { LocalPoller } from './poller';

/**
 * What the event-source mappings of a run connect: its streams to the ingest function.
 *
 * @example
 * const mapping: StreamMapping = { kinesis, streams, ingest, ingestSpec, guard, faults, ledger };
 */
export interface StreamMapping {
  readonly kinesis: KinesisClient;
  /** Source stream name to the run's stream for it. */
  readonly streams: Readonly<Record<string, string>>;
  readonly ingest: PipelineHandlers;
  /** The ingest function's deployment, whose grants each delivery runs under. */
  readonly ingestSpec: DeployedFunction;
  readonly guard: AccessGuard;
  readonly faults: FaultInjector;
  /** Where ingest registered the segments of each shard: a mapping reads on after the last. */
  readonly ledger: Pick<Ledger, 'segments'>;
  /** Meters each delivery as an ingest invocation. */
  readonly meter: UsageMeter;
}

/**
 * One poller per stream, standing in for Lambda's event-source mapping: each delivers its
 * stream's records to ingest, synchronously and in order per shard. A continued run reads on from
 * what ingest registered, as a mapping keeps its place across deployments.
 *
 * @example
 * const pollers = eventSourceMappings({ kinesis, streams, ingest, ingestSpec, guard, faults, ledger, meter });
 * for (const poller of pollers) await poller.drain();
 */
export function eventSourceMappings(mapping: StreamMapping): LocalPoller[] {
  const { guard, ingest, ingestSpec, ledger, meter } = mapping;
  return Object.entries(mapping.streams).map(
    ([source, stream]) =>
      new LocalPoller(
        mapping.kinesis,
        stream,
        (event) =>
          meter.invocation('ingest', () => guard.run(ingestSpec, () => ingest.ingest(event))).then(() => {}),
        mapping.faults,
        { startAfter: (shard) => ledger.segments.lastSeq(shardId(`${source}/${shard}`)) },
      ),
  );
}
