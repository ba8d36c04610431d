import { describe, expect, it } from 'vitest';
import {
  actionsOn,
  build,
  functionGrants,
  logicalId,
  resourcesFor,
  roleGrants,
  type Built,
  type Grant,
} from './helpers';

const twoPhase = build('two-phase');
const threePhase = build('three-phase');
const singlePhase = build('single-phase');

/** `<Bucket.Arn>/<prefix>*` for the built stack's bucket. */
function objects(built: Built, prefix: string): string {
  return `<${logicalId(built.stack, built.sluice.bucket)}.Arn>/${prefix}*`;
}

function arnOf(built: Built, construct: Parameters<typeof logicalId>[1]): string {
  return `<${logicalId(built.stack, construct)}.Arn>`;
}

function fn(built: Built, id: string) {
  const found = built.sluice.functions[id];
  if (!found) throw new Error(`no function ${id}`);
  return found;
}

function s3(built: Built, grants: Grant[], action: 's3:GetObject' | 's3:PutObject'): string[] {
  const bucketArn = arnOf(built, built.sluice.bucket);
  return resourcesFor(grants, action).map((r) => r.replace(`${bucketArn}/`, ''));
}

describe('IAM: the transform function (phase 0)', () => {
  it('reads manifests and segments, and the output only to print', () => {
    // Arrange
    const grants = functionGrants(twoPhase, fn(twoPhase, 'split'));

    // Act
    const reads = s3(twoPhase, grants, 's3:GetObject');

    // Assert
    expect(reads).toEqual(['manifests/*', 'results/words/*', 'segments/*']);
  });

  it('writes shuffle files and dead letters, never manifests, segments or output', () => {
    // Arrange
    const grants = functionGrants(twoPhase, fn(twoPhase, 'split'));

    // Act
    const writes = s3(twoPhase, grants, 's3:PutObject');

    // Assert
    expect(writes).toEqual(['dead-letter/*', 'shuffle/*']);
    expect(actionsOn(grants, objects(twoPhase, 'manifests/'))).not.toContain('s3:PutObject');
    expect(actionsOn(grants, objects(twoPhase, 'segments/'))).not.toContain('s3:PutObject');
  });

  it('writes the output itself, and no shuffle, when the plan has a single phase', () => {
    // Arrange
    const grants = functionGrants(singlePhase, fn(singlePhase, 'upper'));

    // Act
    const writes = s3(singlePhase, grants, 's3:PutObject');

    // Assert
    expect(writes).toEqual(['dead-letter/*', 'output/*']);
    expect(resourcesFor(grants, 'lambda:InvokeFunction')).toEqual([]);
  });

  it('invokes only the reduce functions', () => {
    // Arrange
    const grants = functionGrants(threePhase, fn(threePhase, 'split'));

    // Act
    const invokes = resourcesFor(grants, 'lambda:InvokeFunction');

    // Assert
    expect(invokes).toEqual(
      [arnOf(threePhase, fn(threePhase, 'histogram')), arnOf(threePhase, fn(threePhase, 'sum'))].sort(),
    );
  });
});

describe('IAM: reduce functions', () => {
  it('a non-last phase reads shuffle files and writes shuffle files, not the output', () => {
    // Arrange
    const grants = functionGrants(threePhase, fn(threePhase, 'sum'));

    // Act
    const reads = s3(threePhase, grants, 's3:GetObject');
    const writes = s3(threePhase, grants, 's3:PutObject');

    // Assert
    expect(reads).toEqual(['manifests/*', 'shuffle/*']);
    expect(writes).toEqual(['dead-letter/*', 'shuffle/*']);
  });

  it('the last phase writes the output and reads it only when there is a print sink', () => {
    // Arrange
    const printing = functionGrants(twoPhase, fn(twoPhase, 'sum'));
    const silent = functionGrants(threePhase, fn(threePhase, 'histogram'));

    // Act
    const printingReads = s3(twoPhase, printing, 's3:GetObject');
    const silentReads = s3(threePhase, silent, 's3:GetObject');

    // Assert
    expect(s3(twoPhase, printing, 's3:PutObject')).toEqual(['dead-letter/*', 'results/words/*']);
    expect(printingReads).toEqual(['manifests/*', 'results/words/*', 'shuffle/*']);
    expect(s3(threePhase, silent, 's3:PutObject')).toEqual(['dead-letter/*', 'output/*']);
    expect(silentReads).toEqual(['manifests/*', 'shuffle/*']);
  });

  it('invokes only the reduce functions of later phases', () => {
    // Arrange
    const first = functionGrants(threePhase, fn(threePhase, 'sum'));
    const last = functionGrants(threePhase, fn(threePhase, 'histogram'));

    // Act
    const fromFirst = resourcesFor(first, 'lambda:InvokeFunction');
    const fromLast = resourcesFor(last, 'lambda:InvokeFunction');

    // Assert
    expect(fromFirst).toEqual([arnOf(threePhase, fn(threePhase, 'histogram'))]);
    expect(fromLast).toEqual([]);
  });
});

describe('IAM: ingest and coordinator', () => {
  it('ingest writes segments only, registers them with two ledger actions and reads its stream', () => {
    // Arrange
    const grants = functionGrants(twoPhase, twoPhase.sluice.ingest);

    // Act
    const ledger = actionsOn(grants, arnOf(twoPhase, twoPhase.sluice.table));
    const stream = actionsOn(grants, arnOf(twoPhase, twoPhase.sluice.stream));

    // Assert
    expect(s3(twoPhase, grants, 's3:PutObject')).toEqual(['segments/*']);
    expect(s3(twoPhase, grants, 's3:GetObject')).toEqual([]);
    expect(ledger).toEqual(['dynamodb:PutItem', 'dynamodb:UpdateItem']);
    expect(stream).toEqual(expect.arrayContaining(['kinesis:GetRecords', 'kinesis:GetShardIterator']));
    expect(resourcesFor(grants, 'lambda:InvokeFunction')).toEqual([]);
  });

  it('the coordinator writes manifests only and invokes every phase function', () => {
    // Arrange
    const grants = functionGrants(threePhase, threePhase.sluice.coordinator);

    // Act
    const invokes = resourcesFor(grants, 'lambda:InvokeFunction');

    // Assert
    expect(s3(threePhase, grants, 's3:PutObject')).toEqual(['manifests/*']);
    expect(s3(threePhase, grants, 's3:GetObject')).toEqual(['manifests/*']);
    expect(invokes).toEqual(
      ['split', 'sum', 'histogram'].map((id) => arnOf(threePhase, fn(threePhase, id))).sort(),
    );
  });

  it('the coordinator reads the output when it prints the batches it completes', () => {
    // Arrange
    const grants = functionGrants(twoPhase, twoPhase.sluice.coordinator);

    // Act
    const reads = s3(twoPhase, grants, 's3:GetObject');

    // Assert
    expect(reads).toEqual(['manifests/*', 'results/words/*']);
  });
});

describe('IAM: across all functions', () => {
  const all: [string, Built, Parameters<typeof functionGrants>[1]][] = [
    twoPhase,
    threePhase,
    singlePhase,
  ].flatMap((built) =>
    [built.sluice.ingest, built.sluice.coordinator, ...Object.values(built.sluice.functions)].map(
      (f): [string, Built, Parameters<typeof functionGrants>[1]] => [f.node.path, built, f],
    ),
  );

  it.each(all)('%s uses the four ledger actions at most, on the ledger table only', (_path, built, f) => {
    // Arrange
    const grants = functionGrants(built, f);

    // Act
    const dynamo = grants.filter((g) => g.actions.some((a) => a.startsWith('dynamodb:')));

    // Assert
    for (const grant of dynamo) {
      expect(grant.resources).toEqual([arnOf(built, built.sluice.table)]);
      expect(
        grant.actions.every((a) =>
          ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'].includes(a),
        ),
      ).toBe(true);
    }
  });

  it.each(all)('%s has no wildcard action and no "*" resource', (_path, built, f) => {
    // Arrange
    const grants = functionGrants(built, f);

    // Act
    const actions = grants.flatMap((g) => g.actions);
    const resources = grants.flatMap((g) => g.resources);

    // Assert
    expect(actions.filter((a) => a.includes('*'))).toEqual([]);
    expect(resources).not.toContain('*');
  });

  it('only the coordinator writes manifests and only ingest writes segments', () => {
    // Arrange
    const writers = (prefix: string) =>
      all
        .filter(([, built, f]) =>
          actionsOn(functionGrants(built, f), objects(built, prefix)).includes('s3:PutObject'),
        )
        .map(([path]) => path.split('/').pop());

    // Act
    const manifestWriters = writers('manifests/');
    const segmentWriters = writers('segments/');

    // Assert
    expect(manifestWriters).toEqual(['Coordinator', 'Coordinator', 'Coordinator']);
    expect(segmentWriters).toEqual(['Ingest', 'Ingest', 'Ingest']);
  });

  it('gives the roles no AWS managed policies', () => {
    // Arrange
    const roles = twoPhase.template.findResources('AWS::IAM::Role');

    // Act
    const managed = Object.values(roles).flatMap(
      (r) =>
        ((r as { Properties: { ManagedPolicyArns?: unknown[] } }).Properties.ManagedPolicyArns ??
          []) as unknown[],
    );

    // Assert
    expect(managed).toEqual([]);
  });

  it('lets the schedule invoke the coordinator and nothing else', () => {
    // Arrange
    const { template, stack, sluice } = twoPhase;
    const schedule = Object.values(template.findResources('AWS::Scheduler::Schedule'))[0] as {
      Properties: { Target: { RoleArn: { 'Fn::GetAtt': [string, string] } } };
    };
    const roleId = schedule.Properties.Target.RoleArn['Fn::GetAtt'][0];

    // Act
    const invokes = resourcesFor(roleGrants(template, roleId), 'lambda:InvokeFunction');

    // Assert
    const coordinator = `<${logicalId(stack, sluice.coordinator)}.Arn>`;
    expect(invokes).toEqual([coordinator, `${coordinator}:*`]);
  });
});

describe('IAM: stateful stages and joins', () => {
  const joined = build('joined-windows');

  it('lets a stateful reduce function read its state chunks in batches, and only it', () => {
    // Arrange
    const stateful = functionGrants(joined, fn(joined, 'recent'));
    const stateless = functionGrants(joined, fn(joined, 'joined'));

    // Act
    const tableArn = arnOf(joined, joined.sluice.table);

    // Assert
    expect(actionsOn(stateful, tableArn)).toContain('dynamodb:BatchGetItem');
    expect(actionsOn(stateless, tableArn)).not.toContain('dynamodb:BatchGetItem');
  });

  it('creates a stream and an event-source mapping for each source of a join', () => {
    // Arrange
    const { template, sluice } = joined;

    // Act
    const mappings = template.findResources('AWS::Lambda::EventSourceMapping');

    // Assert
    expect(Object.keys(sluice.streams).sort()).toEqual(['fixture-left', 'fixture-right']);
    expect(Object.keys(mappings)).toHaveLength(2);
  });
});
