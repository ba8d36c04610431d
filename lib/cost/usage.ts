import { AsyncLocalStorage } from 'node:async_hooks';
import type { TaskUsage } from '../batch';
import type { FunctionKind } from '../deployment';
import { aroundRequests } from '../middleware';

/** The AWS services a pipeline's functions call, as the price table names them. */
export type AwsService = 'dynamodb' | 's3' | 'kinesis' | 'lambda';

/** What one operation of one service used. */
export interface OperationUsage {
  readonly requests: number;
  /** DynamoDB read request units (what on-demand bills), as DynamoDB reported them. */
  readonly readUnits: number;
  /** DynamoDB write request units, as DynamoDB reported them. */
  readonly writeUnits: number;
  /** Kinesis PUT payload units: one per started 25 KB of each record put. */
  readonly putUnits: number;
}

/** Requests and units by service and operation (`s3:PutObject`, `dynamodb:UpdateItem`). */
export type Operations = Readonly<Record<string, OperationUsage>>;

/** What one kind of function used: invocations, the time they ran and their requests. */
export interface FunctionUsage {
  readonly invocations: number;
  /** Summed duration of the invocations, ms. */
  readonly durationMs: number;
  readonly operations: Operations;
}

/**
 * The metered use of AWS of a run, by the function kind that made each request; `outside` holds
 * requests made outside any function (producers putting records, setting up resources).
 */
export interface Usage {
  readonly functions: Readonly<Partial<Record<FunctionKind, FunctionUsage>>>;
  readonly outside: Operations;
}

/** What the invocation running now has used so far. */
export interface InvocationUsage {
  readonly kind: FunctionKind;
  /** Since the invocation started, ms. */
  readonly elapsedMs: number;
  readonly operations: Operations;
}

interface Invocation {
  readonly kind: FunctionKind;
  readonly started: number;
  readonly operations: Map<string, OperationUsage>;
}

/** DynamoDB's read operations; every other DynamoDB operation writes. */
const DYNAMO_READS = new Set(['GetItem', 'BatchGetItem', 'Query', 'Scan', 'DescribeTable', 'ListTables']);

/** Operations that return no `ConsumedCapacity` and use no request units. */
const DYNAMO_CONTROL = new Set(['CreateTable', 'DeleteTable', 'DescribeTable', 'ListTables', 'UpdateTable']);

/** A Kinesis PUT payload unit is 25 KB. */
const PUT_UNIT_BYTES = 25 * 1024;

/**
 * The operation a command performs, by the service's API name: the document client's `PutCommand`
 * is DynamoDB's `PutItem`, `PutObjectCommand` is S3's `PutObject`.
 *
 * @example
 * operationOf('dynamodb', 'UpdateCommand'); // 'UpdateItem'
 */
export function operationOf(service: AwsService, commandName: string): string {
  const name = commandName.replace(/Command$/, '');
  if (service === 'dynamodb' && /^(Put|Get|Update|Delete|BatchWrite|BatchGet)$/.test(name))
    return `${name}Item`;
  return name;
}

interface Capacity {
  readonly CapacityUnits?: number;
  readonly ReadCapacityUnits?: number;
  readonly WriteCapacityUnits?: number;
}

function unitsOf(consumed: Capacity | readonly Capacity[] | undefined, read: boolean): number {
  if (consumed === undefined) return 0;
  const list: readonly Capacity[] = Array.isArray(consumed) ? consumed : [consumed as Capacity];
  return list.reduce(
    (sum, c) => sum + ((read ? c.ReadCapacityUnits : c.WriteCapacityUnits) ?? c.CapacityUnits ?? 0),
    0,
  );
}

function putUnitsOf(input: unknown): number {
  const { Records, Data } = (input ?? {}) as { Records?: { Data?: Uint8Array }[]; Data?: Uint8Array };
  const sizes = Records ? Records.map((r) => r.Data?.byteLength ?? 0) : [Data?.byteLength ?? 0];
  return sizes.reduce((sum, bytes) => sum + Math.max(1, Math.ceil(bytes / PUT_UNIT_BYTES)), 0);
}

const NO_USE: OperationUsage = Object.freeze({ requests: 0, readUnits: 0, writeUnits: 0, putUnits: 0 });

function addTo(operations: Map<string, OperationUsage>, key: string, use: OperationUsage): void {
  const before = operations.get(key) ?? NO_USE;
  operations.set(key, {
    requests: before.requests + use.requests,
    readUnits: before.readUnits + use.readUnits,
    writeUnits: before.writeUnits + use.writeUnits,
    putUnits: before.putUnits + use.putUnits,
  });
}

/**
 * Meters what a run asks of AWS, through middleware on its SDK clients: requests by operation and,
 * for DynamoDB, the request units DynamoDB itself reports (every request asks for
 * `ReturnConsumedCapacity: TOTAL`), so that a run's cost is priced from what AWS bills. A
 * conditional write that fails is billed too; DynamoDB does not say its units, so it counts one.
 *
 * @example
 * const meter = new UsageMeter();
 * meter.attach(clients.dynamo, 'dynamodb');
 * meter.count('PutItemCommand');
 */
export class UsageMeter {
  /** By function kind, or `outside`. */
  private readonly operations = new Map<FunctionKind | 'outside', Map<string, OperationUsage>>();
  private readonly commands = new Map<string, number>();
  private readonly invocations = new Map<FunctionKind, { invocations: number; durationMs: number }>();
  /** The invocation a request is made in. */
  private readonly invocationNow = new AsyncLocalStorage<Invocation>();

  /** Meters every request the client sends from now on (the SDK's own retries included). */
  attach(client: unknown, service: AwsService): void {
    aroundRequests(client, `sluiceUsage-${service}`, async (command, send, input) => {
      const operation = operationOf(service, command);
      this.commands.set(command, (this.commands.get(command) ?? 0) + 1);
      const dynamo = service === 'dynamodb' && !DYNAMO_CONTROL.has(operation);
      if (dynamo && typeof input === 'object' && input !== null) {
        (input as { ReturnConsumedCapacity?: string }).ReturnConsumedCapacity ??= 'TOTAL';
      }
      const read = DYNAMO_READS.has(operation);
      try {
        // At the initialize step the SDK answers with `{ output, response }`.
        const result = (await send()) as
          { output?: { ConsumedCapacity?: Capacity | Capacity[] } } | undefined;
        const units = dynamo ? unitsOf(result?.output?.ConsumedCapacity, read) : 0;
        this.add(`${service}:${operation}`, {
          requests: 1,
          readUnits: read ? units : 0,
          writeUnits: dynamo && !read ? units : 0,
          putUnits: service === 'kinesis' && /^PutRecords?$/.test(operation) ? putUnitsOf(input) : 0,
        });
        return result;
      } catch (error) {
        const conditional = (error as { name?: string }).name === 'ConditionalCheckFailedException';
        this.add(`${service}:${operation}`, { ...NO_USE, requests: 1, writeUnits: conditional ? 1 : 0 });
        throw error;
      }
    });
  }

  /**
   * Runs one invocation of a function of a kind: its requests are metered as that kind's, and the
   * invocation and how long it ran (what Lambda bills) are counted, whether it succeeds or throws.
   */
  async invocation<R>(kind: FunctionKind, run: () => Promise<R>): Promise<R> {
    const started = performance.now();
    try {
      return await this.invocationNow.run({ kind, started, operations: new Map() }, run);
    } finally {
      const before = this.invocations.get(kind) ?? { invocations: 0, durationMs: 0 };
      this.invocations.set(kind, {
        invocations: before.invocations + 1,
        durationMs: before.durationMs + performance.now() - started,
      });
    }
  }

  /**
   * What the invocation this is called from has used so far (its task report carries it), or
   * nothing outside an invocation.
   */
  current(): InvocationUsage | undefined {
    const invocation = this.invocationNow.getStore();
    if (!invocation) return undefined;
    return {
      kind: invocation.kind,
      elapsedMs: performance.now() - invocation.started,
      operations: Object.fromEntries([...invocation.operations].sort(([a], [b]) => a.localeCompare(b))),
    };
  }

  /** Requests of one SDK command, or of all commands named (`PutItemCommand`, `PutObjectCommand`). */
  count(...commands: string[]): number {
    return commands.reduce((total, c) => total + (this.commands.get(c) ?? 0), 0);
  }

  /** Requests by SDK command. */
  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.commands].sort(([a], [b]) => a.localeCompare(b)));
  }

  /** Everything metered so far, operations sorted by name. */
  usage(): Usage {
    const sorted = (kind: FunctionKind | 'outside'): Operations =>
      Object.fromEntries([...(this.operations.get(kind) ?? [])].sort(([a], [b]) => a.localeCompare(b)));
    const kinds = new Set<FunctionKind>([...this.invocations.keys()]);
    for (const kind of this.operations.keys()) if (kind !== 'outside') kinds.add(kind);
    const functions: Partial<Record<FunctionKind, FunctionUsage>> = {};
    for (const kind of [...kinds].sort()) {
      functions[kind] = {
        ...(this.invocations.get(kind) ?? { invocations: 0, durationMs: 0 }),
        operations: sorted(kind),
      };
    }
    return { functions, outside: sorted('outside') };
  }

  reset(): void {
    this.operations.clear();
    this.commands.clear();
    this.invocations.clear();
  }

  private add(key: string, use: OperationUsage): void {
    const invocation = this.invocationNow.getStore();
    const kind = invocation?.kind ?? 'outside';
    let operations = this.operations.get(kind);
    if (!operations) {
      operations = new Map();
      this.operations.set(kind, operations);
    }
    addTo(operations, key, use);
    if (invocation) addTo(invocation.operations, key, use);
  }
}

/**
 * What an invocation used between two readings of `UsageMeter.current()` (from its start when
 * `since` is unset), as a task report, a segment or a seal records it.
 *
 * @example
 * const before = meter.current();
 * await work();
 * const used = usageBetween(meter.current(), before);
 */
export function usageBetween(now: InvocationUsage, since?: InvocationUsage): TaskUsage {
  const requests: Record<string, number> = {};
  let readUnits = 0;
  let writeUnits = 0;
  for (const [operation, use] of Object.entries(now.operations)) {
    const before = since?.operations[operation] ?? NO_USE;
    const count = use.requests - before.requests;
    if (count > 0) requests[operation] = count;
    readUnits += use.readUnits - before.readUnits;
    writeUnits += use.writeUnits - before.writeUnits;
  }
  return {
    durationMs: Math.round(now.elapsedMs - (since?.elapsedMs ?? 0)),
    requests,
    readUnits,
    writeUnits,
  };
}

/**
 * Two usages added up: what several segments' ingest invocations used, together.
 *
 * @example
 * const ingest = segments.reduce((sum, s) => (s.usage ? addUsage(sum, s.usage) : sum), NO_TASK_USAGE);
 */
export function addUsage(a: TaskUsage, b: TaskUsage): TaskUsage {
  const requests: Record<string, number> = { ...a.requests };
  for (const [operation, count] of Object.entries(b.requests)) {
    requests[operation] = (requests[operation] ?? 0) + count;
  }
  return {
    durationMs: a.durationMs + b.durationMs,
    requests: Object.fromEntries(Object.entries(requests).sort(([x], [y]) => x.localeCompare(y))),
    readUnits: a.readUnits + b.readUnits,
    writeUnits: a.writeUnits + b.writeUnits,
  };
}

/** No usage: what `addUsage` starts from. */
export const NO_TASK_USAGE: TaskUsage = Object.freeze({
  durationMs: 0,
  requests: Object.freeze({}),
  readUnits: 0,
  writeUnits: 0,
});
