import * as z from 'zod/mini';
import type { AnyPipeline } from './dsl/pipeline';
import { outputPrefix, planPipeline, sourcesOf, type Plan } from './plan';
import { DataFormatError } from './errors';
import { CONFIG_ENV } from './runtime/context';
import type { TickEvent } from './runtime/events';
import { deadLetterPrefix, S3_PREFIXES, shufflePrefix, SKIPPED_PREFIX } from './storage/keys';
import { LEDGER_PK } from './storage/ledger/items';

/**
 * One deployment description of a pipeline: which functions exist, which may invoke which, what
 * each may read and write, and the environment each runs with. The CDK construct turns it into
 * functions, roles and environment variables; the local runtime runs the same functions with the
 * same environment and refuses what the roles would refuse. Neither decides any of it alone.
 */

/** What kind of Lambda function a deployed function is (which handler of `functions/` it runs). */
export type FunctionKind = 'ingest' | 'coordinator' | 'transform' | 'reduce';

/**
 * Memory of each kind of function, MiB, unless the construct's props set it: what the construct
 * deploys and what the cost model prices.
 *
 * @example
 * DEFAULT_MEMORY_MB.reduce; // 1024
 */
export const DEFAULT_MEMORY_MB: Readonly<Record<FunctionKind, number>> = Object.freeze({
  ingest: 512,
  coordinator: 256,
  transform: 1024,
  reduce: 1024,
});

/**
 * How often the schedule starts a coordinator: EventBridge Scheduler's least rate, one minute.
 *
 * @example
 * ScheduleExpression.rate(Duration.millis(SCHEDULE_RATE_MS));
 */
export const SCHEDULE_RATE_MS = 60_000;

/** The memory a deployment gives its functions, MiB, by kind (unset: `DEFAULT_MEMORY_MB`). */
export interface FunctionMemorySizes {
  readonly ingestMemorySize?: number;
  readonly coordinatorMemorySize?: number;
  /** The transform and reduce functions'. */
  readonly taskMemorySize?: number;
}

/**
 * Memory of each kind of function, MiB, as the sizes given set it: what the construct deploys, what
 * the local runtime tells each function (as Lambda does), and what `sluice cost --stack` prices.
 *
 * @example
 * functionMemory({ taskMemorySize: 2048 }).reduce; // 2048
 */
export function functionMemory(sizes: FunctionMemorySizes): Record<FunctionKind, number> {
  return {
    ingest: sizes.ingestMemorySize ?? DEFAULT_MEMORY_MB.ingest,
    coordinator: sizes.coordinatorMemorySize ?? DEFAULT_MEMORY_MB.coordinator,
    transform: sizes.taskMemorySize ?? DEFAULT_MEMORY_MB.transform,
    reduce: sizes.taskMemorySize ?? DEFAULT_MEMORY_MB.reduce,
  };
}

/**
 * How long the event-source mapping gathers a shard's records before invoking ingest, unless the
 * construct's props say: the batch interval, within Lambda's limit of 300 s and at least 1 s. Each
 * ingest call PUTs a segment and writes its ledger item, so at low rates the bill is per call, not
 * per record: one call per shard per interval is the least that still puts a record into the
 * batch after the one it arrived in, at the latest.
 *
 * @example
 * ingestBatchingWindowMs(10_000); // 10000
 * ingestBatchingWindowMs(600_000); // 300000
 */
export function ingestBatchingWindowMs(batchIntervalMs: number): number {
  return Math.min(Math.max(batchIntervalMs, 1000), 300_000);
}

/**
 * Most records per ingest call, unless the construct's props say: the event-source mapping's
 * maximum for Kinesis, so that the batching window, not the record count, sets the calls (a call
 * also ends at Lambda's 6 MB payload).
 *
 * @example
 * new KinesisEventSource(stream, { batchSize: INGEST_BATCH_SIZE });
 */
export const INGEST_BATCH_SIZE = 10_000;

/** Ledger actions that read items. */
export type LedgerReadAction = 'dynamodb:GetItem' | 'dynamodb:Query' | 'dynamodb:BatchGetItem';
/** Ledger actions that write items. */
export type LedgerWriteAction = 'dynamodb:PutItem' | 'dynamodb:UpdateItem' | 'dynamodb:DeleteItem';

/**
 * What a function may do in the ledger table, by the partition keys (`pk`) of the items: IAM's
 * `dynamodb:LeadingKeys`, where `*` matches any run of characters.
 */
export interface LedgerAccess {
  readonly read: readonly string[];
  readonly readActions: readonly LedgerReadAction[];
  readonly write: readonly string[];
  readonly writeActions: readonly LedgerWriteAction[];
  /**
   * Items it may only delete, by partition key: the coordinator's expiry of settled batches, a
   * stateful stage's applied time-index entries and retired chunks.
   */
  readonly expire?: readonly string[];
}

/** One function of a deployed pipeline. */
export interface DeployedFunction {
  /** `ingest`, `coordinator`, or a phase's function id (its first stage id, or `read`). */
  readonly id: string;
  readonly kind: FunctionKind;
  /** The plan phase a transform or reduce function runs. */
  readonly phase?: number;
  /** Ids of the functions it invokes (asynchronously); may include itself. */
  readonly invokes: readonly string[];
  /** S3 key prefixes of the pipeline bucket it reads and writes. */
  readonly objects: { readonly read: readonly string[]; readonly write: readonly string[] };
  readonly ledger: LedgerAccess;
  /** Retries of its asynchronous invocations; unset for ingest (its event-source mapping retries). */
  readonly asyncRetries?: number;
}

/** The whole description. */
export interface Deployment {
  readonly kind: 'sluice.deployment@1';
  readonly pipeline: string;
  /** The phase functions in plan order, then the coordinator, then ingest. */
  readonly functions: readonly DeployedFunction[];
  /** The stream name of every source the pipeline reads, its own first. */
  readonly streams: readonly string[];
  /** What the schedule sends the coordinator every minute. */
  readonly tick: TickEvent;
}

/** The leading-key patterns IAM grants on, by item type: built from the key layout (`LEDGER_PK`). */
export const LEDGER_KEYS = Object.freeze({
  pipeline: LEDGER_PK.pipeline,
  shards: LEDGER_PK.shards,
  segments: (source: string) => `${LEDGER_PK.segmentPrefix}${source}/*`,
  batches: LEDGER_PK.batch,
  failed: LEDGER_PK.failed,
  tasks: `${LEDGER_PK.taskPrefix}*`,
  phaseTasks: (phase: number) => `${LEDGER_PK.taskPrefix}*#${phase}`,
  state: (stage: string) => `${LEDGER_PK.statePrefix}${stage}#*`,
});

/** Lambda's asynchronous retries of a task event (the most it allows). */
const TASK_RETRIES = 2;

/**
 * Describes how a pipeline is deployed.
 *
 * @example
 * const deployment = describeDeployment(wordcount);
 * deployment.functions.map((f) => f.id); // ['tokenize', 'count', 'coordinator', 'ingest']
 */
export function describeDeployment(pipeline: AnyPipeline, plan: Plan = planPipeline(pipeline)): Deployment {
  const last = plan.phases.length - 1;
  const output = `${outputPrefix(plan.spec)}/`;
  // Whoever completes a batch (any phase function, or the coordinator's sweep) prints it.
  const printReads = plan.spec.sinks.some((s) => s.kind === 'sluice.sink/print@1') ? [output] : [];
  const streams = sourcesOf(pipeline, plan).map((source) => source.spec.stream);

  const phases = plan.phases.map((compiled): DeployedFunction => {
    const index = compiled.spec.phase;
    const id = compiled.spec.function;
    const stateful = compiled.wide?.stateful !== undefined;
    const later = plan.phases.slice(index + 1).map((p) => p.spec.function);
    return {
      id,
      kind: index === 0 ? 'transform' : 'reduce',
      phase: index,
      // A phase starts the ones after it; a stateful one also restarts its own partition of the
      // next batch once it has committed this one (see startWaitingSuccessor in runtime/tasks.ts).
      invokes: stateful ? [...later, id] : later,
      objects: {
        read: [
          S3_PREFIXES.manifests,
          index === 0 ? S3_PREFIXES.segments : shufflePrefix(index - 1),
          ...printReads,
        ],
        // Whoever completes a batch (any phase function, or the coordinator's sweep) records its progress.
        write: [
          deadLetterPrefix(index),
          index === last ? output : shufflePrefix(index),
          S3_PREFIXES.progress,
        ],
      },
      ledger: {
        read: [LEDGER_KEYS.batches, LEDGER_KEYS.tasks, ...(stateful ? [LEDGER_KEYS.state(id)] : [])],
        readActions: stateful
          ? ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:BatchGetItem']
          : ['dynamodb:GetItem', 'dynamodb:Query'],
        write: [
          LEDGER_KEYS.batches,
          LEDGER_KEYS.phaseTasks(index),
          LEDGER_KEYS.failed,
          ...(stateful ? [LEDGER_KEYS.state(id)] : []),
        ],
        writeActions: ['dynamodb:PutItem', 'dynamodb:UpdateItem'],
        // A keyed state layout deletes the time-index entries it has applied and retired chunks.
        ...(stateful ? { expire: [LEDGER_KEYS.state(id)] } : {}),
      },
      asyncRetries: TASK_RETRIES,
    };
  });

  const coordinator: DeployedFunction = {
    id: 'coordinator',
    kind: 'coordinator',
    invokes: plan.phases.map((p) => p.spec.function),
    objects: {
      read: [S3_PREFIXES.manifests, ...printReads],
      write: [S3_PREFIXES.manifests, SKIPPED_PREFIX, S3_PREFIXES.progress],
    },
    ledger: {
      read: [
        LEDGER_KEYS.pipeline,
        LEDGER_KEYS.shards,
        ...streams.map(LEDGER_KEYS.segments),
        LEDGER_KEYS.batches,
        LEDGER_KEYS.tasks,
        LEDGER_KEYS.failed,
      ],
      readActions: ['dynamodb:GetItem', 'dynamodb:Query'],
      write: [LEDGER_KEYS.pipeline, LEDGER_KEYS.batches, LEDGER_KEYS.failed],
      writeActions: ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
      // The sweep expires settled batches: their task reports and segment items too.
      expire: [LEDGER_KEYS.tasks, ...streams.map(LEDGER_KEYS.segments)],
    },
    // The next tick comes within a minute and does the same work.
    asyncRetries: 0,
  };

  const ingest: DeployedFunction = {
    id: 'ingest',
    kind: 'ingest',
    // Records on an idle stream wake the sleeping coordinator (its mark is on the pipeline item).
    invokes: ['coordinator'],
    objects: { read: [], write: streams.map((stream) => `${S3_PREFIXES.segments}${stream}/`) },
    ledger: {
      read: [LEDGER_KEYS.pipeline],
      readActions: ['dynamodb:GetItem'],
      write: [LEDGER_KEYS.shards, ...streams.map(LEDGER_KEYS.segments), LEDGER_KEYS.pipeline],
      writeActions: ['dynamodb:PutItem', 'dynamodb:UpdateItem'],
    },
  };

  return Object.freeze({
    kind: 'sluice.deployment@1',
    pipeline: pipeline.name,
    functions: Object.freeze([...phases, coordinator, ingest]),
    streams: Object.freeze(streams),
    tick: Object.freeze({ kind: 'sluice.tick@1', pipeline: pipeline.name }),
  });
}

/**
 * A function of a deployment, by id.
 *
 * @example
 * deployedFunction(deployment, 'count').invokes; // ['count']
 */
export function deployedFunction(deployment: Deployment, id: string): DeployedFunction {
  const found = deployment.functions.find((f) => f.id === id);
  if (!found) throw new RangeError(`the deployment of '${deployment.pipeline}' has no function '${id}'`);
  return found;
}

/** The names of the deployed resources, as the construct (tokens) or the local runtime (names) has them. */
export interface DeployedNames {
  readonly bucket: string;
  readonly table: string;
  /** The deployed name of a function, by id (never asked for the function's own name). */
  readonly functionName: (id: string) => string;
  /** Deployed stream name and the source stream it stands for. */
  readonly streams: readonly (readonly [deployed: string, source: string])[];
  readonly sweepAfterMs: number;
  /** How long the ledger keeps a settled batch's items. @default the runtime's, 7 days */
  readonly ledgerRetentionMs?: number;
  /** Whether the coordinator waits for batch boundaries (`RuntimeConfig.coordinatorWaits`). @default true */
  readonly coordinatorWaits?: boolean;
}

/**
 * The environment a function runs with: its resources, and the names of the functions it invokes.
 * A function's own name is not in it (a function cannot name itself in CloudFormation without a
 * cycle); the runtime takes it from `AWS_LAMBDA_FUNCTION_NAME`, which Lambda sets.
 *
 * @example
 * const env = functionEnvironment(deployment, 'count', names);
 * const config = configFromEnv({ ...env, AWS_LAMBDA_FUNCTION_NAME: 'wc-count' });
 */
export function functionEnvironment(
  deployment: Deployment,
  id: string,
  names: DeployedNames,
  serialize: (value: unknown) => string = JSON.stringify,
): Record<string, string> {
  const fn = deployedFunction(deployment, id);
  const others = fn.invokes.filter((target) => target !== id);
  return {
    [CONFIG_ENV.bucket]: names.bucket,
    [CONFIG_ENV.table]: names.table,
    [CONFIG_ENV.function]: id,
    [CONFIG_ENV.functions]: serialize(
      Object.fromEntries(others.map((target) => [target, names.functionName(target)])),
    ),
    [CONFIG_ENV.sweepAfterMs]: String(names.sweepAfterMs),
    // Only the coordinator's sweep expires the ledger.
    ...(names.ledgerRetentionMs === undefined || fn.kind !== 'coordinator'
      ? {}
      : { [CONFIG_ENV.ledgerRetentionMs]: String(names.ledgerRetentionMs) }),
    ...(names.coordinatorWaits === false && fn.kind === 'coordinator'
      ? { [CONFIG_ENV.coordinatorWaits]: 'false' }
      : {}),
    // As [name, source] pairs: a deployed stream name may be a token, and tokens resolve in values.
    [CONFIG_ENV.streams]: serialize(names.streams.map(([deployed, source]) => [deployed, source])),
  };
}

/**
 * What a deployed pipeline's resources are called, as its stack says in an output: what the CLI
 * (`--stack`) reads a deployed pipeline through. Function memory and the coordinator's timeout are
 * in it too, to price what the functions ran.
 */
export interface DeployedResources {
  readonly kind: 'sluice.resources@1';
  readonly pipeline: string;
  readonly bucket: string;
  readonly table: string;
  /** Source stream name to the deployed stream. */
  readonly streams: Readonly<Record<string, string>>;
  /** Function id to the deployed function's name. */
  readonly functions: Readonly<Record<string, string>>;
  /** Memory of each kind of function, MiB. */
  readonly memoryMb: Readonly<Record<FunctionKind, number>>;
  readonly coordinatorTimeoutMs: number;
  /** Whether the coordinator waits for batch boundaries (the construct's `coordinatorWaits`). @default true */
  readonly coordinatorWaits?: boolean;
}

/** The description of a stack output that holds a pipeline's `DeployedResources`. */
export const RESOURCES_OUTPUT_DESCRIPTION = 'sluice pipeline resources';

/**
 * Parses the value of a stack's resources output, or says why it is not one.
 *
 * @example
 * const resources = parseDeployedResources(JSON.parse(output.OutputValue));
 */
export function parseDeployedResources(raw: unknown): DeployedResources {
  const names = z.record(z.string(), z.string());
  const megabytes = z.number().check(z.int(), z.positive());
  const parsed = z
    .object({
      kind: z.literal('sluice.resources@1'),
      pipeline: z.string(),
      bucket: z.string(),
      table: z.string(),
      streams: names,
      functions: names,
      memoryMb: z.object({
        ingest: megabytes,
        coordinator: megabytes,
        transform: megabytes,
        reduce: megabytes,
      }),
      coordinatorTimeoutMs: z.number().check(z.positive()),
      coordinatorWaits: z.optional(z.boolean()),
    })
    .safeParse(raw);
  if (!parsed.success) {
    throw new DataFormatError(
      `a stack output described '${RESOURCES_OUTPUT_DESCRIPTION}' is not a sluice.resources@1 value: ${z.prettifyError(parsed.error)}`,
      {},
    );
  }
  return Object.freeze(parsed.data);
}
