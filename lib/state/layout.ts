import * as z from 'zod/mini';
import { sealedPartitions, type PhaseSpec, type PlanSpec, type SealedPartitioning } from '../plan';

/**
 * How one stateful stage's state is laid out over its reduce partitions: how many, and the first
 * batch that used this count. A change of the partition count starts a new layout at the first
 * batch sealed with the new count; that batch's partitions re-hash the previous layout's state
 * into their own (a rescale), and every later batch reads and writes the new layout only.
 */
export interface StateLayout {
  readonly partitions: number;
  /** The first batch sealed with this layout. */
  readonly since: number;
  /** On the layout's first batch only, when it rescales: the layout whose state it re-hashes. */
  readonly previous?: { readonly partitions: number; readonly since: number };
}

/** Each stateful stage's layout, by stage id. */
export type StateLayouts = Readonly<Record<string, StateLayout>>;

const count = z.number().check(z.int(), z.positive());

/**
 * The schema of a stage's layout as the ledger's items and the manifest keep it.
 *
 * @example
 * const layouts = z.record(z.string(), stateLayoutSchema).parse(raw);
 */
export const stateLayoutSchema = z.object({
  partitions: count,
  since: count,
  previous: z.optional(z.object({ partitions: count, since: count })),
});

/**
 * The partitions of each stateful stage in a plan, by stage id.
 *
 * @example
 * statefulPartitions(plan.spec); // { count: 4 }
 */
export function statefulPartitions(plan: PlanSpec): Record<string, number> {
  const partitions: Record<string, number> = {};
  for (const phase of plan.phases) {
    const keyed = phase.stages[0];
    if (phase.phase > 0 && keyed && 'stateful' in keyed && keyed.stateful === true) {
      partitions[keyed.id] = phase.partitions ?? 1;
    }
  }
  return partitions;
}

/**
 * The layouts batch n is sealed with: each stateful stage's layout so far, or a new one from n
 * when the plan gives the stage another partition count (re-hashing the one before), or when the
 * stage has none yet (its state starts empty). Layouts only ever start at a batch boundary.
 *
 * @example
 * nextLayouts({ count: 4 }, { count: { partitions: 4, since: 1 } }, 12);
 * // { count: { partitions: 4, since: 1 } }
 * nextLayouts({ count: 8 }, { count: { partitions: 4, since: 1 } }, 12);
 * // { count: { partitions: 8, since: 12, previous: { partitions: 4, since: 1 } } }
 */
export function nextLayouts(
  partitions: Readonly<Record<string, number>>,
  before: StateLayouts,
  batch: number,
): StateLayouts {
  const layouts: Record<string, StateLayout> = {};
  for (const [stage, count] of Object.entries(partitions)) {
    const was = before[stage];
    if (!was) layouts[stage] = { partitions: count, since: batch };
    else if (was.partitions === count) layouts[stage] = { partitions: was.partitions, since: was.since };
    else {
      layouts[stage] = {
        partitions: count,
        since: batch,
        previous: { partitions: was.partitions, since: was.since },
      };
    }
  }
  return layouts;
}

/**
 * The layouts of a pipeline sealed before layouts were recorded: every stateful stage as the plan
 * it was sealed with partitions it, since batch 1.
 *
 * @example
 * const before = state.layouts ?? originalLayouts(previousManifest.plan);
 */
export function originalLayouts(plan: PlanSpec): StateLayouts {
  const layouts: Record<string, StateLayout> = {};
  for (const [stage, count] of Object.entries(statefulPartitions(plan))) {
    layouts[stage] = { partitions: count, since: 1 };
  }
  return layouts;
}

/**
 * A stateful stage's layout in a sealed batch: the manifest's, or, for a batch sealed before
 * layouts were kept, its sealed partitions since batch 1.
 *
 * @example
 * const layout = sealedLayout(manifest, phase.spec); // { partitions: 8, since: 12, previous: ... }
 */
export function sealedLayout(
  sealed: SealedPartitioning & { readonly layouts?: StateLayouts },
  phase: PhaseSpec,
): StateLayout {
  return sealed.layouts?.[phase.function] ?? { partitions: sealedPartitions(sealed, phase), since: 1 };
}
