import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CfnElement } from 'aws-cdk-lib';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { IConstruct } from 'constructs';
import { deployedFunction } from '../../lib/deployment';
import type { AnyPipeline } from '../../lib/dsl/pipeline';
import { SluicePipeline, type SluicePipelineProps } from 'sluice/cdk';
import singlePhase from './fixtures/single-phase';
import joinedWindows from './fixtures/joined-windows';
import runningTotals from './fixtures/running-totals';
import threePhase from './fixtures/three-phase';
import twoPhase from './fixtures/two-phase';

/** The fixture pipelines, by file name. */
export const FIXTURES: Readonly<
  Record<'two-phase' | 'three-phase' | 'single-phase' | 'joined-windows' | 'running-totals', AnyPipeline>
> = {
  'two-phase': twoPhase as AnyPipeline,
  'three-phase': threePhase as AnyPipeline,
  'single-phase': singlePhase as AnyPipeline,
  'joined-windows': joinedWindows as AnyPipeline,
  'running-totals': runningTotals as AnyPipeline,
};

export type FixtureName = keyof typeof FIXTURES;

export function fixturePath(name: FixtureName): string {
  return path.join(__dirname, 'fixtures', `${name}.ts`);
}

/** A synthesized test stack with one pipeline. */
export interface Built {
  readonly stack: Stack;
  readonly sluice: SluicePipeline;
  readonly template: Template;
}

/** Construct props, or a function that makes them inside the test stack (a KMS key, say). */
export type FixtureProps = Partial<SluicePipelineProps> | ((stack: Stack) => Partial<SluicePipelineProps>);

/**
 * Builds a stack around one fixture pipeline without bundling (bundling is tested on its own).
 *
 * @example
 * const { sluice, template } = build('two-phase', { taskTimeout: Duration.minutes(1) });
 * const encrypted = build('two-phase', (stack) => ({ encryptionKey: new kms.Key(stack, 'Key') }));
 */
export function build(
  name: FixtureName,
  props: FixtureProps = {},
  /** Changes the construct before the stack is synthesized. */
  change: (sluice: SluicePipeline) => void = () => {},
): Built {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] }, builtinCloudFormationValidation: false });
  const stack = new Stack(app, 'Test');
  const sluice = new SluicePipeline(stack, 'Pipeline', {
    pipeline: FIXTURES[name],
    entry: fixturePath(name),
    ...(typeof props === 'function' ? props(stack) : props),
  });
  change(sluice);
  return { stack, sluice, template: Template.fromStack(stack) };
}

/**
 * The Lambda function of one function of the deployment description, by its id.
 *
 * @example
 * const count = functionOf(build('two-phase'), 'sum');
 */
export function functionOf(built: Built, id: string): NodejsFunction {
  const { sluice } = built;
  const { kind } = deployedFunction(sluice.deployment, id);
  const fn =
    kind === 'ingest' ? sluice.ingest : kind === 'coordinator' ? sluice.coordinator : sluice.functions[id];
  if (!fn) throw new Error(`no Lambda function for '${id}'`);
  return fn;
}

/** The logical id of a construct's CloudFormation resource. */
export function logicalId(stack: Stack, construct: IConstruct): string {
  return stack.getLogicalId(construct.node.defaultChild as CfnElement);
}

/** An IAM statement with its actions, resources and condition values flattened to strings. */
export interface Grant {
  readonly actions: readonly string[];
  readonly resources: readonly string[];
  /** Operator, then condition key, then values: `{ StringLike: { 's3:prefix': ['manifests/*'] } }`. */
  readonly conditions: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>>;
  /** Logical id of the policy resource that holds the statement. */
  readonly policy: string;
}

/** `Fn::GetAtt`/`Ref`/`Fn::Join` as readable strings: `<Bucket.Arn>/segments/*`. */
export function flatten(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null) {
    const node = value as Record<string, unknown>;
    const join = node['Fn::Join'];
    if (Array.isArray(join)) return (join[1] as unknown[]).map(flatten).join(String(join[0]));
    const getAtt = node['Fn::GetAtt'];
    if (Array.isArray(getAtt)) return `<${String(getAtt[0])}.${String(getAtt[1])}>`;
    if ('Ref' in node) return `<${String(node.Ref)}>`;
  }
  return JSON.stringify(value);
}

const list = (value: unknown): unknown[] =>
  Array.isArray(value) ? value : value === undefined ? [] : [value];

function toGrant(statement: Record<string, unknown>, policy: string): Grant {
  const conditions: Record<string, Record<string, string[]>> = {};
  for (const [operator, keys] of Object.entries((statement.Condition ?? {}) as Record<string, unknown>)) {
    conditions[operator] = Object.fromEntries(
      Object.entries(keys as Record<string, unknown>).map(([key, values]) => [
        key,
        list(values).map(flatten),
      ]),
    );
  }
  return {
    actions: list(statement.Action).map(String),
    resources: list(statement.Resource).map(flatten),
    conditions,
    policy,
  };
}

interface PolicyResource {
  readonly Properties: {
    readonly Roles?: unknown;
    readonly PolicyDocument: { Statement: Record<string, unknown>[] };
  };
}

/** Every Allow statement of the policies attached to a role, flattened. */
export function roleGrants(template: Template, roleLogicalId: string): Grant[] {
  const policies = template.findResources('AWS::IAM::Policy') as Record<string, PolicyResource>;
  const grants: Grant[] = [];
  for (const [id, policy] of Object.entries(policies)) {
    const roles = list(policy.Properties.Roles).map(flatten);
    if (!roles.includes(`<${roleLogicalId}>`)) continue;
    for (const statement of policy.Properties.PolicyDocument.Statement) {
      if (statement.Effect === 'Allow') grants.push(toGrant(statement, id));
    }
  }
  return grants;
}

/**
 * Every statement of every identity policy in a template: policies, managed policies and roles'
 * inline policies.
 */
export function everyStatement(template: Template): Grant[] {
  const documents: [string, { Statement: Record<string, unknown>[] }][] = [];
  for (const type of ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy']) {
    for (const [id, policy] of Object.entries(
      template.findResources(type) as Record<string, PolicyResource>,
    )) {
      documents.push([id, policy.Properties.PolicyDocument]);
    }
  }
  const roles = template.findResources('AWS::IAM::Role') as Record<
    string,
    { Properties: { Policies?: { PolicyDocument: { Statement: Record<string, unknown>[] } }[] } }
  >;
  for (const [id, role] of Object.entries(roles)) {
    for (const inline of role.Properties.Policies ?? []) documents.push([id, inline.PolicyDocument]);
  }
  return documents.flatMap(([id, document]) => document.Statement.map((statement) => toGrant(statement, id)));
}

/** Resources a role may use an action on. */
export function resourcesFor(grants: readonly Grant[], action: string): string[] {
  return grants
    .filter((g) => g.actions.includes(action))
    .flatMap((g) => g.resources)
    .sort();
}

/** Actions a role may use on a resource. */
export function actionsOn(grants: readonly Grant[], resource: string): string[] {
  return grants
    .filter((g) => g.resources.includes(resource))
    .flatMap((g) => g.actions)
    .sort();
}

/** The grants of one function's role. */
export function functionGrants(built: Built, fn: IConstruct & { role?: IConstruct }): Grant[] {
  if (!fn.role) throw new Error(`${fn.node.path} has no role`);
  return roleGrants(built.template, logicalId(built.stack, fn.role));
}

/**
 * A Lambda function's environment with every token flattened (`{ Ref: X }` as `<X>`), as strings
 * that `configFromEnv` can read.
 */
export function resolvedEnvironment(template: Template, functionLogicalId: string): Record<string, string> {
  const fn = template.findResources('AWS::Lambda::Function')[functionLogicalId] as
    { Properties: { Environment?: { Variables?: Record<string, unknown> } } } | undefined;
  if (!fn) throw new Error(`no function ${functionLogicalId}`);
  return Object.fromEntries(
    Object.entries(fn.Properties.Environment?.Variables ?? {}).map(([name, value]) => [name, flatten(value)]),
  );
}

/** One finding of cfn-lint. */
export interface CfnLintFinding {
  readonly rule: string;
  readonly level: string;
  readonly message: string;
}

let cfnLintFound: boolean | undefined;

/** Whether the `cfn-lint` command (Python, offline) is on PATH; asked once per test file. */
export function cfnLintAvailable(): boolean {
  cfnLintFound ??= spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' }).status === 0;
  return cfnLintFound;
}

/** What a cfn-lint test is called, saying why it is skipped when the command is missing. */
export function cfnLintTitle(title: string): string {
  return cfnLintAvailable()
    ? title
    : `${title} (skipped: the cfn-lint command is not on PATH; pip install cfn-lint)`;
}

/**
 * cfn-lint's findings about the CloudFormation template files, other than the ones CDK itself
 * causes: W3005, a `DependsOn` that a `Fn::GetAtt` already implies (every Lambda function of CDK
 * depends on its role that way).
 *
 * @example
 * expect(cfnLint([templatePath])).toEqual([]);
 */
export function cfnLint(files: readonly string[]): CfnLintFinding[] {
  const run = spawnSync('cfn-lint', ['--format', 'json', ...files], { encoding: 'utf8', timeout: 60_000 });
  if (run.error) throw run.error;
  const findings = JSON.parse(run.stdout || '[]') as {
    Level: string;
    Message: string;
    Rule: { Id: string };
  }[];
  return findings
    .filter((f) => f.Rule.Id !== 'W3005')
    .map((f) => ({ rule: f.Rule.Id, level: f.Level, message: f.Message }));
}
