import { projectMonth, type ProjectionInput } from '../../lib/cost/model';
import type { PriceTable } from '../../lib/cost/prices';
import type { FunctionUsage, Operations, Usage } from '../../lib/cost/usage';
import type { FunctionKind } from '../../lib/deployment';

/**
 * The steps a month's bill is itemised by:
 * - `ingest`: the ingest invocations and their ledger writes (segment items);
 * - `coordinator`: the schedule's ticks and the coordinator's looping invocation, as deployed;
 * - `seal`: the coordinator's DynamoDB requests, one sealing pass per batch;
 * - `transform`, `reduce`: the tasks' invocations and their ledger requests (reports, marks,
 *   completion);
 * - `state`: DynamoDB requests on state items (heads and chunks), whichever task made them;
 * - `s3`: every step's S3 requests (segments, manifests, shuffle files, output, progress records);
 * - `kinesis`: shard-hours and PUT payload units.
 */
export const STEPS = [
  'ingest',
  'coordinator',
  'seal',
  'transform',
  'reduce',
  'state',
  's3',
  'kinesis',
] as const;
export type Step = (typeof STEPS)[number];

/** A month's bill by step, US dollars. */
export type StepBill = Readonly<Record<Step, number>>;

/** A month by step, and its S3 part by the function kind that made the requests. */
export interface MonthBySteps {
  readonly steps: StepBill;
  readonly s3ByKind: Readonly<Partial<Record<FunctionKind, number>>>;
}

type ByService = Readonly<Record<string, number>>;

/**
 * A projected month (`projectMonth`, what `sluice cost` prices) itemised by step. The projection is
 * linear in each function kind's use, so each step is what its part of the run adds to the month of
 * a run with no function use at all (which still pays the schedule, the coordinator as deployed
 * and Kinesis); the state's part of the tasks is priced the same way from its own requests. Every
 * price comes from the model: nothing is priced here. Throws if the steps do not add up to the
 * projection.
 *
 * @example
 * const { steps } = monthBySteps(input, { reduce: items.stateOperations('reduce') }, US_EAST_1);
 */
export function monthBySteps(
  input: ProjectionInput,
  state: Partial<Record<FunctionKind, Operations>>,
  prices: PriceTable,
): MonthBySteps {
  const { outside } = input.usage;
  const month = (functions: Usage['functions']): ByService =>
    projectMonth({ ...input, usage: { functions, outside } }, prices).month.byService;
  const base = month({});
  const added = (functions: Usage['functions']): ByService => {
    const withPart = month(functions);
    return Object.fromEntries(
      Object.keys({ ...base, ...withPart }).map((service) => [
        service,
        (withPart[service] ?? 0) - (base[service] ?? 0),
      ]),
    );
  };
  const steps: Record<Step, number> = {
    ingest: 0,
    coordinator: (base.lambda ?? 0) + (base.scheduler ?? 0),
    seal: 0,
    transform: 0,
    reduce: 0,
    state: 0,
    s3: 0,
    kinesis: base.kinesis ?? 0,
  };
  const s3ByKind: Partial<Record<FunctionKind, number>> = {};
  const kinds: readonly [FunctionKind, Step][] = [
    ['ingest', 'ingest'],
    ['coordinator', 'seal'],
    ['transform', 'transform'],
    ['reduce', 'reduce'],
  ];
  for (const [kind, step] of kinds) {
    const use = input.usage.functions[kind];
    if (!use) continue;
    const part = added({ [kind]: use });
    // Only tasks touch state; their part of a month scales per batch, not per invocation, so the
    // state's requests are priced as a task's with no invocation of its own.
    const stateOperations = kind === 'transform' || kind === 'reduce' ? state[kind] : undefined;
    const statePart: FunctionUsage = { invocations: 0, durationMs: 0, operations: stateOperations ?? {} };
    const stateDynamo = stateOperations ? (added({ [kind]: statePart }).dynamodb ?? 0) : 0;
    steps[step] += (part.lambda ?? 0) + (part.dynamodb ?? 0) - stateDynamo;
    steps.state += stateDynamo;
    steps.s3 += part.s3 ?? 0;
    s3ByKind[kind] = part.s3 ?? 0;
  }
  const total = projectMonth(input, prices).month.total;
  const sum = STEPS.reduce((s, step) => s + steps[step], 0);
  if (Math.abs(sum - total) > 1e-6 * Math.max(1, total)) {
    throw new Error(`the steps add up to $${sum}, the projected month is $${total}`);
  }
  return { steps, s3ByKind };
}
