import type { AnyPipeline, OnError } from './dsl/pipeline';
import type { SinkSpec } from './dsl/sink';
import type { Source, SourceSpec } from './dsl/source';
import type { NarrowSpec, NarrowStage, WideSpec, WideStage } from './dsl/types';
import { DATA_FORMATS, type DataFormats } from './encoding/formats';
import { PlanMismatchError } from './errors';
import { fingerprint } from './fingerprint';
import { stageId, type StageId } from './ids';

/**
 * A phase is the unit of work one Lambda function does: phase 0 reads input segments and runs the
 * narrow stages before the first keyed stage (the transform function); phase k >= 1 runs keyed stage
 * k and the narrow stages after it (a reduce function). Each phase but the last ends in a shuffle.
 */
export interface PhaseSpec {
  readonly phase: number;
  /** Names the phase's Lambda function: the first stage's id (or 'read' for a phase 0 with none). */
  readonly function: StageId;
  readonly stages: readonly (NarrowSpec | WideSpec)[];
  /** Tasks of this phase: `null` for phase 0 (decided per batch from input bytes), else partitions. */
  readonly partitions: number | null;
}

/** The serializable plan: sealed into every manifest, compared by every task with its bundle. */
export interface PlanSpec {
  readonly kind: 'sluice.plan@1';
  readonly pipeline: string;
  readonly batchIntervalMs: number;
  readonly onError: OnError;
  readonly source: SourceSpec;
  readonly phases: readonly PhaseSpec[];
  readonly sinks: readonly SinkSpec[];
  /** The data formats the plan's tasks write and read (shuffle files, state chunks, segments). */
  readonly formats: DataFormats;
  /**
   * Each stage's fingerprint, by stage id: its spec, its phase's partitions and the formats its
   * data is kept in. Two plans whose stage fingerprints differ run that stage differently.
   */
  readonly stages: Readonly<Record<string, string>>;
  /** The fingerprint of everything above: what a task compares with its own bundle's plan. */
  readonly fingerprint: string;
}

/** A phase with its code: what a task executes. */
export interface CompiledPhase {
  readonly spec: PhaseSpec;
  /** The keyed stage a reduce phase starts with; unset for phase 0. */
  readonly wide?: WideStage<unknown, unknown>;
  readonly narrow: readonly NarrowStage<unknown, unknown>[];
  /** Phase 0 of a pipeline whose first keyed stage is a join: the join's other side. */
  readonly right?: {
    readonly source: Source<unknown>;
    readonly narrow: readonly NarrowStage<unknown, unknown>[];
  };
}

/** A pipeline split into phases. */
export interface Plan {
  readonly spec: PlanSpec;
  readonly phases: readonly CompiledPhase[];
}

/**
 * Splits a pipeline into phases at its keyed stages.
 *
 * @example
 * const plan = planPipeline(wordcount);
 * plan.phases.map((p) => p.spec.function); // ['tokenize', 'count']
 */
export function planPipeline(pipeline: AnyPipeline): Plan {
  const groups: { wide?: WideStage<unknown, unknown>; narrow: NarrowStage<unknown, unknown>[] }[] = [
    { narrow: [] },
  ];
  for (const stage of pipeline.stages) {
    if (stage.shape === 'wide') groups.push({ wide: stage as WideStage<unknown, unknown>, narrow: [] });
    else
      (groups[groups.length - 1] as { narrow: NarrowStage<unknown, unknown>[] }).narrow.push(
        stage as NarrowStage<unknown, unknown>,
      );
  }
  const phases: CompiledPhase[] = groups.map((group, phase) => {
    const stages = [...(group.wide ? [group.wide.spec] : []), ...group.narrow.map((s) => s.spec)];
    const first = stages[0];
    const spec: PhaseSpec = {
      phase,
      function: first ? first.id : stageId('read'),
      stages,
      partitions: group.wide ? (group.wide.spec.partitions ?? pipeline.partitions) : null,
    };
    const right = phase === 0 ? groups[1]?.wide?.join?.right : undefined;
    return {
      spec,
      ...(group.wide ? { wide: group.wide } : {}),
      narrow: group.narrow,
      ...(right ? { right: { source: right.source, narrow: right.stages } } : {}),
    };
  });
  const content = {
    kind: 'sluice.plan@1' as const,
    pipeline: pipeline.name,
    batchIntervalMs: pipeline.batchIntervalMs,
    onError: pipeline.onError,
    source: pipeline.source.spec,
    phases: phases.map((p) => p.spec),
    sinks: pipeline.sinks.map((s) => s.spec),
    formats: DATA_FORMATS,
  };
  const stages: Record<string, string> = {};
  for (const phase of content.phases) {
    for (const stage of phase.stages) {
      stages[stage.id] = fingerprint({ stage, partitions: phase.partitions, formats: DATA_FORMATS });
    }
  }
  return { spec: { ...content, stages, fingerprint: fingerprint({ ...content, stages }) }, phases };
}

/** What differs between two plans, in words: the stages added, removed or changed, and settings. */
function planDifferences(sealed: PlanSpec, bundled: PlanSpec): string[] {
  const differences: string[] = [];
  const ids = new Set([...Object.keys(sealed.stages), ...Object.keys(bundled.stages)]);
  for (const id of ids) {
    const was = sealed.stages[id];
    const now = bundled.stages[id];
    if (was === undefined) differences.push(`stage '${id}' is new`);
    else if (now === undefined) differences.push(`stage '${id}' is gone`);
    else if (was !== now) differences.push(`stage '${id}' changed`);
  }
  const settings = ['pipeline', 'batchIntervalMs', 'onError', 'source', 'sinks', 'formats'] as const;
  for (const name of settings) {
    if (fingerprint(sealed[name]) !== fingerprint(bundled[name])) differences.push(`${name} changed`);
  }
  const order = (spec: PlanSpec): string =>
    spec.phases.map((p) => p.stages.map((s) => s.id).join(',')).join('|');
  if (order(sealed) !== order(bundled)) differences.push('the stages are in other phases or another order');
  return differences;
}

/**
 * Throws unless a sealed plan is the one this bundle would make: a task must never run a batch
 * with code other than the code its manifest was sealed for.
 *
 * @example
 * assertSamePlan(manifest.plan, planPipeline(pipeline).spec);
 */
export function assertSamePlan(sealed: PlanSpec, bundled: PlanSpec): void {
  if (sealed.fingerprint === bundled.fingerprint) return;
  const differences = planDifferences(sealed, bundled);
  throw new PlanMismatchError(
    `the sealed plan ${sealed.fingerprint} is not this bundle's plan ${bundled.fingerprint}: ${
      differences.length > 0 ? differences.join('; ') : 'its fingerprint differs'
    }`,
  );
}

/**
 * Every source a pipeline reads: its own, then a join's other one when that is another stream.
 *
 * @example
 * sourcesOf(pipeline, plan).map((s) => s.spec.stream); // ['clicks', 'users']
 */
export function sourcesOf(pipeline: AnyPipeline, plan: Plan): Source<unknown>[] {
  const sources = [pipeline.source];
  const right = plan.phases[0]?.right?.source;
  if (right && right.spec.stream !== pipeline.source.spec.stream) sources.push(right);
  return sources;
}

/** The output prefix: the s3Jsonl sink's, or `output`. */
export function outputPrefix(spec: PlanSpec): string {
  for (const sink of spec.sinks) if (sink.kind === 'sluice.sink/s3Jsonl@1') return sink.prefix;
  return 'output';
}
