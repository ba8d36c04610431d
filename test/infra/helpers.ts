import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CfnElement } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { AnyPipeline } from '../../lib/dsl/pipeline';
import { SluicePipeline, type SluicePipelineProps } from '../../infra/pipeline-construct';
import singlePhase from './fixtures/single-phase';
import joinedWindows from './fixtures/joined-windows';
import threePhase from './fixtures/three-phase';
import twoPhase from './fixtures/two-phase';

/** The fixture pipelines, by file name. */
export const FIXTURES: Readonly<
  Record<'two-phase' | 'three-phase' | 'single-phase' | 'joined-windows', AnyPipeline>
> = {
  'two-phase': twoPhase as AnyPipeline,
  'three-phase': threePhase as AnyPipeline,
  'single-phase': singlePhase as AnyPipeline,
  'joined-windows': joinedWindows as AnyPipeline,
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

/**
 * Builds a stack around one fixture pipeline without bundling (bundling is tested on its own).
 *
 * @example
 * const { sluice, template } = build('two-phase', { taskTimeout: Duration.minutes(1) });
 */
export function build(name: FixtureName, props: Partial<SluicePipelineProps> = {}): Built {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] }, builtinCloudFormationValidation: false });
  const stack = new Stack(app, 'Test');
  const sluice = new SluicePipeline(stack, 'Pipeline', {
    pipeline: FIXTURES[name],
    pipelineModule: fixturePath(name),
    ...props,
  });
  return { stack, sluice, template: Template.fromStack(stack) };
}

/** The logical id of a construct's CloudFormation resource. */
export function logicalId(stack: Stack, construct: IConstruct): string {
  return stack.getLogicalId(construct.node.defaultChild as CfnElement);
}

/** An IAM statement with its actions and resources flattened to strings. */
export interface Grant {
  readonly actions: readonly string[];
  readonly resources: readonly string[];
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

const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : [value]);

/** Every Allow statement of the policies attached to a role, flattened. */
export function roleGrants(template: Template, roleLogicalId: string): Grant[] {
  const policies = template.findResources('AWS::IAM::Policy');
  const grants: Grant[] = [];
  for (const policy of Object.values(policies) as { Properties: Record<string, unknown> }[]) {
    const roles = list(policy.Properties.Roles).map(flatten);
    if (!roles.includes(`<${roleLogicalId}>`)) continue;
    const document = policy.Properties.PolicyDocument as { Statement: Record<string, unknown>[] };
    for (const statement of document.Statement) {
      if (statement.Effect !== 'Allow') continue;
      grants.push({
        actions: list(statement.Action).map(String),
        resources: list(statement.Resource).map(flatten),
      });
    }
  }
  return grants;
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
