import { awsTargetFromEnv } from '../lib/aws';
import type { Pipeline } from '../lib/dsl/pipeline';
import { SluiceError } from '../lib/errors';
import type { RuntimeContext } from '../lib/runtime/context';
import { operate, type CommandResult, type OperatorCommand } from '../lib/runtime/operator';
import { LocalRuntime } from './runtime';
import { openStack } from './stack';

/**
 * A command line that does not say which pipeline to read or operate: a named run (`--run`), or
 * a deployed stack (`--stack`), exactly one.
 *
 * @example
 * if (error instanceof TargetError) console.error(error.hint);
 */
export class TargetError extends SluiceError {
  override readonly name = 'TargetError';
  constructor(message: string, hint: string) {
    super(message, { retryable: false, hint });
  }
}

/** Which pipeline an operator's command is for: a named run on an endpoint, or a deployed stack. */
export interface TargetFlags {
  readonly run?: string;
  readonly stack?: string;
}

/** A running pipeline opened to read and to operate. */
export interface OperatedPipeline {
  /** What it is, for messages: `run 'nightly' on http://...` or `stack 'sluice-wordcount'`. */
  readonly where: string;
  readonly ctx: RuntimeContext;
  /** Does an operator's command, as the coordinator would, and waits for what it started locally. */
  command(command: OperatorCommand): Promise<CommandResult>;
  close(): Promise<void>;
}

/**
 * Exactly one of `--run` and `--stack`, or a `TargetError` saying what to give.
 *
 * @example
 * const kind = targetKind('sluice status', { stack: 'sluice-wordcount' }); // 'stack'
 */
export function targetKind(command: string, flags: TargetFlags): 'run' | 'stack' {
  if (flags.run !== undefined && flags.stack !== undefined) {
    throw new TargetError(
      `${command} reads either a named run or a stack, not both`,
      'give --run or --stack',
    );
  }
  if (flags.run === undefined && flags.stack === undefined) {
    throw new TargetError(
      `${command} needs a pipeline to read`,
      'give --run <name> (a named run on AWS_ENDPOINT_URL) or --stack <name> (a deployed stack)',
    );
  }
  return flags.stack === undefined ? 'run' : 'stack';
}

/**
 * Opens the pipeline a command names (a stack only starts tasks when opened to `operate`). A named run (on `AWS_ENDPOINT_URL`, which another process
 * may be driving) is opened creating nothing, and its commands go to its coordinator function in
 * this process, whose tasks run here to the end. A deployed stack's commands run the same
 * executor (`operate`) from this machine with its credentials: the ledger's conditional writes
 * fence them as they fence the coordinator, and tasks start with Lambda's asynchronous invoke.
 *
 * @example
 * const target = await openTarget(wordcount, { stack: 'sluice-wordcount' }, 'sluice pause');
 * await target.command({ kind: 'pause', reason: 'deploying' });
 * await target.close();
 */
export async function openTarget<T, Out>(
  pipeline: Pipeline<T, Out>,
  flags: TargetFlags,
  command: string,
  options: {
    readonly operate?: boolean;
    /** The endpoint of a named run, or of a stack in an emulator. @default process.env.AWS_ENDPOINT_URL */
    readonly endpoint?: string;
  } = {},
): Promise<OperatedPipeline> {
  if (targetKind(command, flags) === 'stack') {
    const target =
      options.endpoint === undefined
        ? undefined
        : awsTargetFromEnv({ ...process.env, AWS_ENDPOINT_URL: options.endpoint });
    const deployed = await openStack(pipeline, flags.stack ?? '', target, {
      operate: options.operate ?? false,
    });
    return {
      where: `stack '${deployed.stack}'`,
      ctx: deployed.ctx,
      command: (cmd) => operate(deployed.ctx, cmd),
      close: () => {
        deployed.close();
        return Promise.resolve();
      },
    };
  }
  const endpoint = options.endpoint ?? process.env.AWS_ENDPOINT_URL;
  if (!endpoint) {
    throw new TargetError(
      `${command} reads a named run on a long-running endpoint, and AWS_ENDPOINT_URL is not set`,
      'start one with sluice local serve, and run the pipeline there with sluice local run --run <name>',
    );
  }
  const name = flags.run ?? '';
  const run = await LocalRuntime.start(pipeline, {
    run: name,
    existingOnly: true,
    clock: 'manual',
    endpoint,
  });
  return {
    where: `run '${name}' on ${endpoint}`,
    ctx: run.ctx,
    async command(cmd) {
      const result = await run.command(cmd);
      // The tasks a retry or skip started run in this process: see them to their end.
      if (cmd.kind === 'retry' || cmd.kind === 'skip') await run.invoker.idle();
      return result;
    },
    close: () => run.stop(),
  };
}
