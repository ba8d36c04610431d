import * as fs from 'node:fs';
import * as path from 'node:path';
import { planChanges, type PlanSpec } from '../lib/plan';

/**
 * Checks a pipeline's plan against the one its lock file keeps (the plan last synthesized), and
 * keeps the new one. A change that stored state or in-flight batches cannot survive (`planChanges`)
 * fails synthesis, before anything is deployed, unless `allowBreakingChanges` says the operator has
 * drained the pipeline and dealt with its state. A stateful stage's new partition count fails it
 * unless `allowRescale` opts into re-hashing its state at the next batch.
 *
 * @example
 * checkPlanLock('sluice.plan.json', plan.spec, { allowBreakingChanges: false, allowRescale: false });
 */
export function checkPlanLock(
  file: string,
  plan: PlanSpec,
  options: { readonly allowBreakingChanges: boolean; readonly allowRescale: boolean },
): void {
  const absolute = path.resolve(file);
  if (fs.existsSync(absolute)) {
    const locked = readLock(absolute);
    if (locked.fingerprint === plan.fingerprint) return;
    const { breaking, rescaled } = planChanges(locked, plan);
    if (rescaled.length > 0 && !options.allowRescale && !options.allowBreakingChanges) {
      throw new Error(
        `pipeline '${plan.pipeline}': ${rescaled.join('; ')} (from the plan in ${file}). ` +
          'Its state is then re-hashed into the new partitions at the first batch sealed with them: every new ' +
          'partition reads the whole of the old state once. Options: undo the change; or synthesize with ' +
          'allowRescale: true to rescale (batches sealed before run on the old count; nothing to drain).',
      );
    }
    if (breaking.length > 0 && !options.allowBreakingChanges) {
      throw new Error(
        `pipeline '${plan.pipeline}': this plan cannot take over from the one in ${file}: ${breaking.join('; ')}. ` +
          'Stored state and batches in flight would be read wrongly. Options: undo the change; give a changed ' +
          'keyed stage a new id (its state starts empty; the old state is left behind); deploy it as a new ' +
          'pipeline (another name); or drain the pipeline (sluice pause, then wait until sluice status shows ' +
          'no open batch), clear or migrate the state yourself, and synthesize with allowBreakingChanges: true.',
      );
    }
  }
  fs.writeFileSync(absolute, `${JSON.stringify(plan, null, 2)}\n`);
}

function readLock(file: string): PlanSpec {
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<PlanSpec> | null;
  if (raw?.kind !== 'sluice.plan@1' || typeof raw.fingerprint !== 'string' || !Array.isArray(raw.phases)) {
    throw new Error(`${file} is not a sluice plan lock (sluice.plan@1): delete it to start a new one`);
  }
  return raw as PlanSpec;
}
