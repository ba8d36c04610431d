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

/**
 * How a plan differs from an earlier one. `breaking`: what in-flight batches or stored state cannot
 * survive: the keyed stages (which, in order), a keyed stage's spec (its kind, window, timeout,
 * lateness: what its state means), the data formats, the pipeline's name, and the batch interval of
 * a pipeline that keeps state (windows and timeouts count in batches). `rescaled`: stateful stages
 * whose partition count changed: the first batch sealed with the new count re-hashes their state
 * into the new partitions (a migration, done once, at a batch boundary). `compatible`: what rolls
 * forward at the next task (record-level stages, sinks, `onError`, the source's decoder, the
 * partitions of a keyed stage that keeps no state). Batches sealed before run with the partitions
 * they were sealed with. Stage code that is not in a spec (a function's body) is never compared: it
 * rolls forward.
 */
export interface PlanChanges {
  readonly breaking: readonly string[];
  readonly rescaled: readonly string[];
  readonly compatible: readonly string[];
}

/** Whether a stage spec keeps state across batches. */
function keepsState(stage: NarrowSpec | WideSpec): boolean {
  return 'stateful' in stage && stage.stateful === true;
}

/** A keyed stage's spec, field by field (its partitions aside): what of it changed, in words. */
function specChanges(was: WideSpec, now: WideSpec): string[] {
  const fields = new Set([...Object.keys(was), ...Object.keys(now)].filter((f) => f !== 'partitions'));
  const changed = [...fields].filter(
    (field) =>
      fingerprint((was as unknown as Record<string, unknown>)[field] ?? null) !==
      fingerprint((now as unknown as Record<string, unknown>)[field] ?? null),
  );
  return changed;
}

/**
 * What changed from one plan to another, sorted into what breaks state or in-flight batches and
 * what rolls forward.
 *
 * @example
 * planChanges(sealed, bundled).breaking; // ["keyed stage 'count' changed (window)"]
 */
export function planChanges(was: PlanSpec, now: PlanSpec): PlanChanges {
  const breaking: string[] = [];
  const rescaled: string[] = [];
  const compatible: string[] = [];
  if (was.pipeline !== now.pipeline)
    breaking.push(`the pipeline's name changed ('${was.pipeline}' to '${now.pipeline}')`);
  if (fingerprint(was.formats) !== fingerprint(now.formats)) breaking.push('the data formats changed');
  const stateful = [...was.phases, ...now.phases].some((phase) => phase.stages.some(keepsState));
  if (was.batchIntervalMs !== now.batchIntervalMs) {
    const change = `the batch interval changed (${was.batchIntervalMs} ms to ${now.batchIntervalMs} ms)`;
    (stateful ? breaking : compatible).push(change);
  }
  const keyed = (spec: PlanSpec): string[] => spec.phases.slice(1).map((phase) => phase.function);
  if (keyed(was).join(',') !== keyed(now).join(',')) {
    breaking.push(
      `the keyed stages changed (${keyed(was).join(', ') || 'none'} to ${keyed(now).join(', ') || 'none'})`,
    );
  } else {
    now.phases.slice(1).forEach((phase, index) => {
      // A reduce phase starts with its keyed stage.
      const earlier = was.phases[index + 1];
      const before = earlier?.stages[0] as WideSpec | undefined;
      const after = phase.stages[0] as WideSpec | undefined;
      if (!earlier || !before || !after) return;
      const changed = specChanges(before, after);
      if (changed.length > 0) breaking.push(`keyed stage '${after.id}' changed (${changed.join(', ')})`);
      else if (earlier.partitions !== phase.partitions) {
        const change = `keyed stage '${after.id}' goes from ${String(earlier.partitions)} to ${String(phase.partitions)} partitions`;
        (keepsState(after) ? rescaled : compatible).push(change);
      }
    });
  }
  const narrow = (spec: PlanSpec): string =>
    fingerprint(spec.phases.map((phase, index) => (index === 0 ? phase.stages : phase.stages.slice(1))));
  if (narrow(was) !== narrow(now)) compatible.push('record-level stages changed');
  if (fingerprint(was.sinks) !== fingerprint(now.sinks)) compatible.push('the sinks changed');
  if (was.onError !== now.onError) compatible.push(`onError changed ('${was.onError}' to '${now.onError}')`);
  if (fingerprint(was.source) !== fingerprint(now.source)) {
    (was.source.stream === now.source.stream ? compatible : breaking).push('the source changed');
  }
  return { breaking, rescaled, compatible };
}

/**
 * Checks that this bundle can run a batch sealed under `sealed`: the same plan, or one whose
 * changes roll forward or rescale (returned, for the log: the batch runs with the partitions it was
 * sealed with). A breaking change throws `PlanMismatchError`: the batch was sealed for code that
 * keeps its data another way.
 *
 * @example
 * const rolledForward = checkSealedPlan(manifest.plan, planPipeline(pipeline).spec);
 */
export function checkSealedPlan(sealed: PlanSpec, bundled: PlanSpec): readonly string[] {
  if (sealed.fingerprint === bundled.fingerprint) return [];
  const { breaking, rescaled, compatible } = planChanges(sealed, bundled);
  if (breaking.length === 0) return [...rescaled, ...compatible];
  throw new PlanMismatchError(
    `the sealed plan ${sealed.fingerprint} is not this bundle's plan ${bundled.fingerprint}: ${breaking.join('; ')}`,
  );
}

/** What of a sealed manifest fixes its batch's partitions: the plan and the state layouts. */
export interface SealedPartitioning {
  readonly plan: PlanSpec;
  readonly layouts?: Readonly<Record<string, { readonly partitions: number }>>;
}

/**
 * The partitions a reduce phase has in a sealed batch: those it was sealed with (a stateful
 * stage's state layout, else the sealed plan's phase), which a later deployment's code may have
 * changed. Keys are routed and state is kept by these, never by the bundle's own count.
 *
 * @example
 * sealedPartitions(manifest, plan.phases[1].spec); // 4, though the bundle now says 8
 */
export function sealedPartitions(sealed: SealedPartitioning, phase: PhaseSpec): number {
  return (
    sealed.layouts?.[phase.function]?.partitions ??
    sealed.plan.phases[phase.phase]?.partitions ??
    phase.partitions ??
    1
  );
}

/**
 * A phase of this bundle's plan as a sealed batch runs it: with the partitions it was sealed with.
 *
 * @example
 * const next = sealedPhase(ctx.plan.phases[1], manifest); // routes keys into the sealed count
 */
export function sealedPhase(
  phase: CompiledPhase | undefined,
  sealed: SealedPartitioning,
): CompiledPhase | undefined {
  if (!phase || phase.spec.phase === 0) return phase;
  const partitions = sealedPartitions(sealed, phase.spec);
  return partitions === phase.spec.partitions ? phase : { ...phase, spec: { ...phase.spec, partitions } };
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
