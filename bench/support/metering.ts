import type { Operations, OperationUsage, UsageMeter } from '../../lib/cost/usage';
import { operationOf } from '../../lib/cost/usage';
import type { FunctionKind } from '../../lib/deployment';
import { aroundRequests } from '../../lib/middleware';
import { isConditionFailure } from '../../lib/storage/conditions';
import { LEDGER_PK } from '../../lib/storage/ledger/items';

/**
 * The DynamoDB items a bench tells apart: a stateful partition's state chunks (with the keyed
 * layout's time-index entries and the slotted layout's deltas) and its head (lib/storage/state-store.ts), and every other item of
 * the ledger table (pipeline, segments, batches, task reports).
 */
export type ItemClass = 'chunk' | 'head' | 'ledger';

export const ITEM_CLASSES: readonly ItemClass[] = ['chunk', 'head', 'ledger'];

/** Requests of one class of items, the items they named, and the request units DynamoDB reported. */
export interface ItemUse {
  readonly requests: number;
  readonly items: number;
  readonly readUnits: number;
  readonly writeUnits: number;
}

/** The kind of function a request was made in, or `outside` (the harness, the producer). */
type Caller = FunctionKind | 'outside';

const READS = new Set(['GetItem', 'BatchGetItem', 'Query', 'Scan']);

/** A key attribute as the request carries it: a plain string (document client) or `{ S }`. */
function keyString(value: unknown): string {
  if (typeof value === 'string') return value;
  const { S } = (value ?? {}) as { S?: unknown };
  return typeof S === 'string' ? S : '';
}

function classOf(key: unknown): ItemClass {
  const { pk, sk } = (key ?? {}) as { pk?: unknown; sk?: unknown };
  if (!keyString(pk).startsWith(LEDGER_PK.statePrefix)) return 'ledger';
  // Under a state key, everything but the head is state: chunks, time-index entries, deltas.
  return keyString(sk) === 'head' ? 'head' : 'chunk';
}

/** The class of the items a request names, and how many it names. */
function itemsOf(input: unknown): { readonly itemClass: ItemClass; readonly items: number } {
  const { Key, Item, RequestItems, ExpressionAttributeValues } = (input ?? {}) as {
    Key?: unknown;
    Item?: unknown;
    RequestItems?: Record<string, { Keys?: unknown[] } | { PutRequest?: { Item?: unknown } }[]>;
    ExpressionAttributeValues?: { ':pk'?: unknown; ':from'?: unknown };
  };
  if (Key !== undefined) return { itemClass: classOf(Key), items: 1 };
  // A query over a key range (the state store's: a generation of chunks, the time index).
  if (ExpressionAttributeValues?.[':pk'] !== undefined) {
    const { ':pk': pk, ':from': sk } = ExpressionAttributeValues;
    return { itemClass: classOf({ pk, sk }), items: 0 };
  }
  if (Item !== undefined) return { itemClass: classOf(Item), items: 1 };
  for (const request of Object.values(RequestItems ?? {})) {
    if (Array.isArray(request)) {
      return { itemClass: classOf(request[0]?.PutRequest?.Item), items: request.length };
    }
    const keys = request.Keys ?? [];
    return { itemClass: classOf(keys[0]), items: keys.length };
  }
  return { itemClass: 'ledger', items: 0 };
}

interface Capacity {
  readonly CapacityUnits?: number;
}

function unitsOf(consumed: Capacity | readonly Capacity[] | undefined): number {
  if (consumed === undefined) return 0;
  const list: readonly Capacity[] = Array.isArray(consumed) ? consumed : [consumed as Capacity];
  return list.reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0);
}

const NO_ITEM_USE: ItemUse = { requests: 0, items: 0, readUnits: 0, writeUnits: 0 };

function addItemUse(a: ItemUse, b: ItemUse): ItemUse {
  return {
    requests: a.requests + b.requests,
    items: a.items + b.items,
    readUnits: a.readUnits + b.readUnits,
    writeUnits: a.writeUnits + b.writeUnits,
  };
}

/**
 * DynamoDB requests by the class of item they touch, beside the run's `UsageMeter` (which counts
 * by operation only): which of a batch's request units are state chunks, state heads or the rest of
 * the ledger, and which function kind made them (asked of the meter). The units are the ones
 * DynamoDB returns for the `ReturnConsumedCapacity: TOTAL` the meter asks for on every request; a
 * refused conditional write counts one write unit, as the meter counts it.
 *
 * @example
 * const items = new ItemMeter(run.usage);
 * items.attach(run.clients.dynamo);
 * items.byClass('reduce').chunk.writeUnits;
 */
export class ItemMeter {
  /** By caller, then `<class> <operation>`. */
  private readonly uses = new Map<Caller, Map<string, ItemUse>>();

  constructor(private readonly meter: UsageMeter) {}

  attach(dynamo: unknown): void {
    aroundRequests(dynamo, 'benchItemClasses', async (command, send, input) => {
      const operation = operationOf('dynamodb', command);
      const { itemClass, items } = itemsOf(input);
      const caller = this.meter.current()?.kind ?? 'outside';
      const read = READS.has(operation);
      try {
        const result = (await send()) as
          { output?: { ConsumedCapacity?: Capacity | Capacity[] } } | undefined;
        const units = unitsOf(result?.output?.ConsumedCapacity);
        this.add(caller, `${itemClass} ${operation}`, {
          requests: 1,
          items,
          readUnits: read ? units : 0,
          writeUnits: read ? 0 : units,
        });
        return result;
      } catch (error) {
        const refused = isConditionFailure(error);
        this.add(caller, `${itemClass} ${operation}`, {
          ...NO_ITEM_USE,
          requests: 1,
          writeUnits: refused ? 1 : 0,
        });
        throw error;
      }
    });
  }

  reset(): void {
    this.uses.clear();
  }

  /** Use by class of item, of the callers given (every function kind unless said). */
  byClass(...callers: Caller[]): Readonly<Record<ItemClass, ItemUse>> {
    const totals: Record<ItemClass, ItemUse> = { chunk: NO_ITEM_USE, head: NO_ITEM_USE, ledger: NO_ITEM_USE };
    for (const [caller, uses] of this.uses) {
      if (callers.length > 0 ? !callers.includes(caller) : caller === 'outside') continue;
      for (const [key, use] of uses) {
        const itemClass = key.split(' ')[0] as ItemClass;
        totals[itemClass] = addItemUse(totals[itemClass], use);
      }
    }
    return totals;
  }

  /** Use by class of item and operation (`chunk BatchGetItem`), of every function kind. */
  byOperation(): Readonly<Record<string, ItemUse>> {
    const totals = new Map<string, ItemUse>();
    for (const [caller, uses] of this.uses) {
      if (caller === 'outside') continue;
      for (const [key, use] of uses) totals.set(key, addItemUse(totals.get(key) ?? NO_ITEM_USE, use));
    }
    return Object.fromEntries([...totals].sort(([a], [b]) => a.localeCompare(b)));
  }

  /**
   * What one function kind asked of the state's items (chunks and heads), as the meter's
   * `Operations` (`dynamodb:PutItem`), to be priced by the cost model beside the rest.
   */
  stateOperations(kind: FunctionKind): Operations {
    const operations: Record<string, OperationUsage> = {};
    for (const [key, use] of this.uses.get(kind) ?? []) {
      const [itemClass, operation] = key.split(' ');
      if (itemClass === 'ledger' || operation === undefined) continue;
      const before = operations[`dynamodb:${operation}`];
      operations[`dynamodb:${operation}`] = {
        requests: (before?.requests ?? 0) + use.requests,
        readUnits: (before?.readUnits ?? 0) + use.readUnits,
        writeUnits: (before?.writeUnits ?? 0) + use.writeUnits,
        putUnits: 0,
      };
    }
    return operations;
  }

  private add(caller: Caller, key: string, use: ItemUse): void {
    let uses = this.uses.get(caller);
    if (!uses) {
      uses = new Map();
      this.uses.set(caller, uses);
    }
    uses.set(key, addItemUse(uses.get(key) ?? NO_ITEM_USE, use));
  }
}

/**
 * The duration of every invocation, by function kind: the run's `UsageMeter` sums them, a bench
 * wants each (a median per partition). Wraps the meter's `invocation`, which the local invoker and
 * the event-source mapping run every invocation through; `onEnd` runs as each one ends.
 *
 * @example
 * const times = new InvocationTimes(run.usage);
 * await run.advance();
 * median(times.of('reduce'));
 */
export class InvocationTimes {
  private readonly durations = new Map<FunctionKind, number[]>();

  constructor(meter: UsageMeter, onEnd: () => void = () => undefined) {
    const invocation = meter.invocation.bind(meter);
    meter.invocation = async <R>(kind: FunctionKind, run: () => Promise<R>): Promise<R> => {
      const started = performance.now();
      try {
        return await invocation(kind, run);
      } finally {
        const list = this.durations.get(kind) ?? [];
        list.push(performance.now() - started);
        this.durations.set(kind, list);
        onEnd();
      }
    };
  }

  /** Durations of the invocations of a kind since the last reset, ms, in the order they ended. */
  of(kind: FunctionKind): readonly number[] {
    return this.durations.get(kind) ?? [];
  }

  reset(): void {
    this.durations.clear();
  }
}
