import type { UsageMeter } from '../lib/cost/usage';
import type { AwsClients } from '../lib/aws';
import type { AnyPipeline } from '../lib/dsl/pipeline';
import {
  functionEnvironment,
  functionMemory,
  type DeployedFunction,
  type DeployedNames,
  type Deployment,
} from '../lib/deployment';
import { InvalidInputError } from '../lib/errors';
import type { Clock } from '../lib/runtime/context';
import { createHandlers, type PipelineHandlers } from '../lib/runtime/handlers';
import type { AccessGuard } from './access';
import type { LocalInvoker } from './invoker';
import type { RunNames } from './run-names';

/**
 * How long a batch may go without progress before a coordinator pass sweeps it (re-drives its
 * tasks). Shorter than the construct's five-minute default, as local tasks take milliseconds;
 * `settle()` does not wait for it and sweeps at once.
 */
const SWEEP_AFTER_MS = 30_000;

/**
 * What the functions of a run are deployed with.
 *
 * @example
 * const options: FunctionDeployment = { pipeline, deployment, names, clients, invoker, guard, clock, print, meter };
 */
export interface FunctionDeployment {
  readonly pipeline: AnyPipeline;
  readonly deployment: Deployment;
  readonly names: RunNames;
  readonly clients: AwsClients;
  /** Where each function is registered, and what it invokes others through. */
  readonly invoker: LocalInvoker;
  /** Runs each invocation under its function's grants. */
  readonly guard: AccessGuard;
  readonly clock: Clock;
  /** Where the pipeline's `print` sink writes. */
  readonly print: (text: string) => void;
  /** Meters every invocation, as the Lambda adapter does. */
  readonly meter: UsageMeter;
  /** Memory of the transform and reduce functions, MiB. @default DEFAULT_MEMORY_MB */
  readonly taskMemorySize?: number;
  /** As the construct's `coordinatorWaits`. @default true */
  readonly coordinatorWaits?: boolean;
}

/**
 * Deploys every function of a run as Lambda would: its handlers built from its own environment
 * (what the construct sets, and the function's name, which Lambda adds), so each has its own
 * context, configuration and stores; each is registered with the invoker under its deployed name
 * and runs under its own grants. Returns the handlers by function id.
 *
 * @example
 * const functions = deployFunctions({ pipeline, deployment, names, clients, invoker, guard, clock, print, meter });
 * const coordinator = handlersOf(functions, 'coordinator');
 */
export function deployFunctions(options: FunctionDeployment): ReadonlyMap<string, PipelineHandlers> {
  const { deployment, names, invoker, guard } = options;
  const deployedNames: DeployedNames = {
    bucket: names.bucket,
    table: names.table,
    functionName: names.functionName,
    streams: Object.entries(names.streams).map(([source, stream]) => [stream, source] as const),
    sweepAfterMs: SWEEP_AFTER_MS,
    ...(options.coordinatorWaits === false ? { coordinatorWaits: false } : {}),
  };
  const functions = new Map<string, PipelineHandlers>();
  const memory = functionMemory(options);
  for (const spec of deployment.functions) {
    const name = names.functionName(spec.id);
    const handlers = createHandlers(options.pipeline, {
      // What Lambda adds to the construct's environment: the function's name and memory.
      env: {
        ...functionEnvironment(deployment, spec.id, deployedNames),
        AWS_LAMBDA_FUNCTION_NAME: name,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memory[spec.kind]),
      },
      clients: options.clients,
      send: invoker.transportFor(spec),
      clock: options.clock,
      print: options.print,
      meter: options.meter,
    });
    functions.set(spec.id, handlers);
    invoker.register({
      name,
      spec,
      run: (event) => guard.run(spec, () => runHandler(handlers, spec.kind, event)),
    });
  }
  return functions;
}

/**
 * The handlers of one deployed function, by function id; a `RangeError` for an id the run does not
 * have.
 *
 * @example
 * const ctx = handlersOf(functions, 'count').ctx;
 */
export function handlersOf(functions: ReadonlyMap<string, PipelineHandlers>, id: string): PipelineHandlers {
  const found = functions.get(id);
  if (!found) throw new RangeError(`the run has no function '${id}'`);
  return found;
}

/** Runs one invocation of a function with the handler of its kind. */
async function runHandler(
  handlers: PipelineHandlers,
  kind: DeployedFunction['kind'],
  event: unknown,
): Promise<void> {
  switch (kind) {
    case 'coordinator':
      // One pass per invocation: the local scheduler ticks every batch interval.
      await handlers.coordinator(event, () => 0);
      return;
    case 'transform':
      await handlers.transform(event);
      return;
    case 'reduce':
      await handlers.reduce(event);
      return;
    case 'ingest':
      await handlers.ingest(event);
      return;
    default:
      throw new InvalidInputError(`no handler for a function of kind '${String(kind)}'`);
  }
}
