import * as fs from 'node:fs';
import * as path from 'node:path';
import { planChanges, type PlanSpec } from '../lib/plan';

/**
 * Checks a pipeline's plan against the one its lock file keeps (the plan last synthesized), and
 * keeps the new one. A change that stored state or in-flight batches cannot survive (`planChanges`)
 * fails synthesis, before anything is deployed, unless `allowBreakingChanges` says the operator has
 * drained the pipeline and dealt with its state.
 *
 * @example
 * checkPlanLock('sluice.plan.json', plan.spec, false);
 */
export function checkPlanLock(file: string, plan: PlanSpec, allowBreakingChanges: boolean): void {
  const absolute = path.resolve(file);
  if (fs.existsSync(absolute)) {
    const locked = readLock(absolute);
    if (locked.fingerprint === plan.fingerprint) return;
    const { breaking } = planChanges(locked, plan);
    if (breaking.length > 0 && !allowBreakingChanges) {
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
