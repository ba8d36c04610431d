import * as iam from 'aws-cdk-lib/aws-iam';
import { describe, expect, it } from 'vitest';
import { deployedFunction, type DeployedFunction } from '../../lib/deployment';
import {
  actionsOn,
  build,
  everyStatement,
  functionGrants,
  functionOf,
  logicalId,
  resourcesFor,
  roleGrants,
  type Built,
  type FixtureName,
  type Grant,
} from './helpers';

const twoPhase = build('two-phase');
const threePhase = build('three-phase');
const singlePhase = build('single-phase');
const joined = build('joined-windows');
const totals = build('running-totals');

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

/** A role's DynamoDB statements as actions and the leading keys they are limited to. */
function ledgerStatements(
  grants: readonly Grant[],
): { actions: string[]; leadingKeys: string[] | undefined }[] {
  return grants
    .filter((g) => g.actions.some((a) => a.startsWith('dynamodb:')))
    .map((g) => ({
      actions: [...g.actions].sort(),
      leadingKeys: g.conditions['ForAllValues:StringLike']?.['dynamodb:LeadingKeys']?.slice(),
    }));
}

/** A role's ListBucket statements as the resources and the `s3:prefix` values they allow. */
function listings(
  grants: readonly Grant[],
): { resources: readonly string[]; prefixes: string[] | undefined }[] {
  return grants
    .filter((g) => g.actions.includes('s3:ListBucket'))
    .map((g) => ({
      resources: g.resources,
      prefixes: g.conditions.StringLike?.['s3:prefix']?.slice().sort(),
    }));
}

/** Every function of every built stack, named by its construct path. */
function everyFunction(...stacks: Built[]): [string, Built, DeployedFunction][] {
  return stacks.flatMap((built) =>
    built.sluice.deployment.functions.map((spec): [string, Built, DeployedFunction] => [
      functionOf(built, spec.id).node.path,
      built,
      spec,
    ]),
  );
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

  it('writes its own phase prefixes of shuffle files and dead letters and batch progress, never manifests, segments or output', () => {
    // Arrange
    const grants = functionGrants(twoPhase, fn(twoPhase, 'split'));

    // Act
    const writes = s3(twoPhase, grants, 's3:PutObject');

    // Assert
    expect(writes).toEqual(['dead-letter/phase-0/*', 'progress/*', 'shuffle/phase-0/*']);
    expect(actionsOn(grants, objects(twoPhase, 'manifests/'))).not.toContain('s3:PutObject');
    expect(actionsOn(grants, objects(twoPhase, 'segments/'))).not.toContain('s3:PutObject');
  });

  it('writes the output itself, and no shuffle, when the plan has a single phase', () => {
    // Arrange
    const grants = functionGrants(singlePhase, fn(singlePhase, 'upper'));

    // Act
    const writes = s3(singlePhase, grants, 's3:PutObject');

    // Assert
    expect(writes).toEqual(['dead-letter/phase-0/*', 'output/*', 'progress/*']);
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
  it('a non-last phase reads the previous shuffle and writes its own, not the output', () => {
    // Arrange
    const grants = functionGrants(threePhase, fn(threePhase, 'sum'));

    // Act
    const reads = s3(threePhase, grants, 's3:GetObject');
    const writes = s3(threePhase, grants, 's3:PutObject');

    // Assert
    expect(reads).toEqual(['manifests/*', 'shuffle/phase-0/*']);
    expect(writes).toEqual(['dead-letter/phase-1/*', 'progress/*', 'shuffle/phase-1/*']);
  });

  it('the last phase writes the output and reads it only when there is a print sink', () => {
    // Arrange
    const printing = functionGrants(twoPhase, fn(twoPhase, 'sum'));
    const silent = functionGrants(threePhase, fn(threePhase, 'histogram'));

    // Act
    const printingReads = s3(twoPhase, printing, 's3:GetObject');
    const silentReads = s3(threePhase, silent, 's3:GetObject');

    // Assert
    expect(s3(twoPhase, printing, 's3:PutObject')).toEqual([
      'dead-letter/phase-1/*',
      'progress/*',
      'results/words/*',
    ]);
    expect(printingReads).toEqual(['manifests/*', 'results/words/*', 'shuffle/phase-0/*']);
    expect(s3(threePhase, silent, 's3:PutObject')).toEqual([
      'dead-letter/phase-2/*',
      'output/*',
      'progress/*',
    ]);
    expect(silentReads).toEqual(['manifests/*', 'shuffle/phase-1/*']);
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
  it("ingest writes its sources' segments only, registers them, reads its stream and may wake the coordinator", () => {
    // Arrange
    const grants = functionGrants(twoPhase, twoPhase.sluice.ingest);

    // Act
    const ledger = actionsOn(grants, arnOf(twoPhase, twoPhase.sluice.table));
    const stream = actionsOn(grants, arnOf(twoPhase, twoPhase.sluice.stream));

    // Assert
    expect(s3(twoPhase, grants, 's3:PutObject')).toEqual(['segments/fixture-lines/*']);
    expect(s3(twoPhase, grants, 's3:GetObject')).toEqual([]);
    expect(ledger).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
    expect(stream).toEqual(expect.arrayContaining(['kinesis:GetRecords', 'kinesis:GetShardIterator']));
    expect(resourcesFor(grants, 'lambda:InvokeFunction')).toEqual([
      arnOf(twoPhase, twoPhase.sluice.coordinator),
    ]);
  });

  it('ingest of a join writes the segments of both sources', () => {
    // Arrange
    const grants = functionGrants(joined, joined.sluice.ingest);

    // Act
    const writes = s3(joined, grants, 's3:PutObject');

    // Assert
    expect(writes).toEqual(['segments/fixture-left/*', 'segments/fixture-right/*']);
  });

  it('the coordinator writes manifests, skipped-batch dead letters and batch progress only, and invokes every phase function', () => {
    // Arrange
    const grants = functionGrants(threePhase, threePhase.sluice.coordinator);

    // Act
    const invokes = resourcesFor(grants, 'lambda:InvokeFunction');

    // Assert
    expect(s3(threePhase, grants, 's3:PutObject')).toEqual([
      'dead-letter/skipped/*',
      'manifests/*',
      'progress/*',
    ]);
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

describe('IAM: ledger items by leading key', () => {
  it('ingest writes only the shard list, its sources’ segment items and the pipeline item’s asleep mark, which it reads', () => {
    // Arrange
    const grants = functionGrants(joined, joined.sluice.ingest);

    // Act
    const statements = ledgerStatements(grants);

    // Assert
    expect(statements).toEqual([
      { actions: ['dynamodb:GetItem'], leadingKeys: ['pipeline'] },
      {
        actions: ['dynamodb:PutItem', 'dynamodb:UpdateItem'],
        leadingKeys: ['shards', 'segment#fixture-left/*', 'segment#fixture-right/*', 'pipeline'],
      },
    ]);
  });

  it.each([
    ['transform', 'split', 0],
    ['reduce', 'sum', 1],
    ['last reduce', 'histogram', 2],
  ] as const)(
    'a %s task reads batches and reports, and writes batches, its own phase’s reports and failures',
    (_kind, id, phase) => {
      // Arrange
      const grants = functionGrants(threePhase, fn(threePhase, id));

      // Act
      const statements = ledgerStatements(grants);

      // Assert
      expect(statements).toEqual([
        { actions: ['dynamodb:GetItem', 'dynamodb:Query'], leadingKeys: ['batch', 'task#*'] },
        {
          actions: ['dynamodb:PutItem', 'dynamodb:UpdateItem'],
          leadingKeys: ['batch', `task#*#${phase}`, 'failed'],
        },
      ]);
    },
  );

  it('a stateful reduce task also reads (in batches), writes and deletes its own state items, and no other stage’s', () => {
    // Arrange
    const grants = functionGrants(totals, fn(totals, 'recent'));

    // Act
    const statements = ledgerStatements(grants);

    // Assert
    expect(statements).toEqual([
      {
        actions: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:Query'],
        leadingKeys: ['batch', 'task#*', 'state#recent#*'],
      },
      {
        actions: ['dynamodb:PutItem', 'dynamodb:UpdateItem'],
        leadingKeys: ['batch', 'task#*#2', 'failed', 'state#recent#*'],
      },
      // The keyed layout's applied time-index entries and retired chunks.
      { actions: ['dynamodb:DeleteItem'], leadingKeys: ['state#recent#*'] },
    ]);
  });

  it('the coordinator writes only the pipeline, batch and failure items, and may delete expired reports and segments', () => {
    // Arrange
    const grants = functionGrants(joined, joined.sluice.coordinator);

    // Act
    const statements = ledgerStatements(grants);

    // Assert
    expect(statements).toEqual([
      {
        actions: ['dynamodb:GetItem', 'dynamodb:Query'],
        leadingKeys: [
          'pipeline',
          'shards',
          'segment#fixture-left/*',
          'segment#fixture-right/*',
          'batch',
          'task#*',
          'failed',
        ],
      },
      {
        actions: ['dynamodb:DeleteItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
        leadingKeys: ['pipeline', 'batch', 'failed'],
      },
      {
        actions: ['dynamodb:DeleteItem'],
        leadingKeys: ['task#*', 'segment#fixture-left/*', 'segment#fixture-right/*'],
      },
    ]);
  });

  it.each(everyFunction(twoPhase, threePhase, singlePhase, joined, totals))(
    '%s gets exactly the ledger access of its description',
    (_path, built, spec) => {
      // Arrange
      const grants = functionGrants(built, functionOf(built, spec.id));

      // Act
      const statements = ledgerStatements(grants);

      // Assert
      const { read, readActions, write, writeActions, expire = [] } = spec.ledger;
      expect(statements).toEqual(
        [
          { actions: [...readActions].sort(), leadingKeys: [...read] },
          { actions: [...writeActions].sort(), leadingKeys: [...write] },
          { actions: expire.length > 0 ? ['dynamodb:DeleteItem'] : [], leadingKeys: [...expire] },
        ].filter((s) => s.actions.length > 0),
      );
    },
  );
});

describe('IAM: no DynamoDB access without a leading-key condition', () => {
  const fixtures: FixtureName[] = [
    'two-phase',
    'three-phase',
    'single-phase',
    'joined-windows',
    'running-totals',
  ];

  /** Statements that allow a DynamoDB action without limiting it to leading keys. */
  function unconditioned(statements: readonly Grant[]): Grant[] {
    return statements.filter(
      (s) =>
        s.actions.some((a) => a.startsWith('dynamodb:') || a === '*') &&
        !(s.conditions['ForAllValues:StringLike']?.['dynamodb:LeadingKeys']?.length ?? 0),
    );
  }

  it.each(fixtures)('the %s template has none', (name) => {
    // Arrange
    const { template } = build(name);

    // Act
    const statements = everyStatement(template);

    // Assert
    expect(statements.filter((s) => s.actions.some((a) => a.startsWith('dynamodb:'))).length).toBeGreaterThan(
      0,
    );
    expect(unconditioned(statements)).toEqual([]);
  });

  it('finds a DynamoDB statement without the condition when there is one', () => {
    // Arrange
    const { template } = build('two-phase', {}, (sluice) =>
      sluice.coordinator.addToRolePolicy(
        new iam.PolicyStatement({ actions: ['dynamodb:Query'], resources: [sluice.table.tableArn] }),
      ),
    );

    // Act
    const found = unconditioned(everyStatement(template));

    // Assert
    expect(found.map((s) => s.actions)).toEqual([['dynamodb:Query']]);
  });
});

describe('IAM: listing the bucket', () => {
  it.each(everyFunction(twoPhase, threePhase, singlePhase, joined, totals))(
    '%s may list exactly the prefixes it reads, and only if it reads',
    (_path, built, spec) => {
      // Arrange
      const grants = functionGrants(built, functionOf(built, spec.id));

      // Act
      const listed = listings(grants);

      // Assert
      const reads = spec.objects.read.map((prefix) => `${prefix}*`).sort();
      expect(listed).toEqual(
        reads.length > 0 ? [{ resources: [arnOf(built, built.sluice.bucket)], prefixes: reads }] : [],
      );
    },
  );

  it('limits the transform function to listing manifests, segments and the printed output', () => {
    // Arrange
    const grants = functionGrants(twoPhase, fn(twoPhase, 'split'));

    // Act
    const listed = listings(grants);

    // Assert
    expect(listed).toEqual([
      {
        resources: [arnOf(twoPhase, twoPhase.sluice.bucket)],
        prefixes: ['manifests/*', 'results/words/*', 'segments/*'],
      },
    ]);
    expect(listings(functionGrants(twoPhase, twoPhase.sluice.ingest))).toEqual([]);
  });
});

describe('IAM: a stateful phase restarts its own successor', () => {
  it('lets the reduce function of a stateful stage invoke itself, through a policy of its own', () => {
    // Arrange
    const recent = fn(joined, 'recent');
    const grants = functionGrants(joined, recent);

    // Act
    const selfInvokes = grants.filter(
      (g) => g.actions.includes('lambda:InvokeFunction') && g.resources.includes(arnOf(joined, recent)),
    );

    // Assert
    expect(selfInvokes).toHaveLength(1);
    expect(selfInvokes[0]?.resources).toEqual([arnOf(joined, recent)]);
    // Not the role's default policy: the function depends on that one.
    expect(selfInvokes[0]?.policy).not.toMatch(/DefaultPolicy/);
  });

  it.each([
    ['joined-windows', 'left'],
    ['joined-windows', 'joined'],
    ['running-totals', 'split'],
  ] as const)('does not let the stateless %s function %s invoke itself', (name, id) => {
    // Arrange
    const built = name === 'joined-windows' ? joined : totals;
    const self = fn(built, id);

    // Act
    const invokes = resourcesFor(functionGrants(built, self), 'lambda:InvokeFunction');

    // Assert
    expect(invokes).not.toContain(arnOf(built, self));
  });

  it('lets each of two stateful phases invoke itself and the phases after it', () => {
    // Arrange
    const first = fn(totals, 'totals');
    const second = fn(totals, 'recent');

    // Act
    const fromFirst = resourcesFor(functionGrants(totals, first), 'lambda:InvokeFunction');
    const fromSecond = resourcesFor(functionGrants(totals, second), 'lambda:InvokeFunction');

    // Assert
    expect(fromFirst).toEqual([arnOf(totals, first), arnOf(totals, second)].sort());
    expect(fromSecond).toEqual([arnOf(totals, second)]);
  });

  it.each<FixtureName>(['joined-windows', 'running-totals'])(
    'synthesizes the %s stack, stateful phases and all, without a dependency cycle',
    (name) => {
      // Arrange: Template.fromStack (in build) refuses a template whose resources form a cycle.
      const fixture = name;

      // Act
      const attempt = () => build(fixture);

      // Assert
      expect(attempt).not.toThrow();
    },
  );

  it('would be a cycle on the default policy (what the separate policy avoids)', () => {
    // Arrange
    const selfInvokeOnDefaultPolicy = (sluice: Built['sluice']) => {
      const recent = sluice.functions.recent;
      recent?.addToRolePolicy(
        new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [recent.functionArn] }),
      );
    };

    // Act
    const attempt = () => build('running-totals', {}, selfInvokeOnDefaultPolicy);

    // Assert
    expect(attempt).toThrow(
      /dependency cycle: PipelineReducerecentRoleDefaultPolicy\w+ -> PipelineReducerecent\w+/,
    );
  });
});

describe('IAM: across all functions', () => {
  const all = everyFunction(twoPhase, threePhase, singlePhase, joined, totals);

  it.each(all)('%s uses only ledger item actions, on the ledger table only', (_path, built, spec) => {
    // Arrange
    const grants = functionGrants(built, functionOf(built, spec.id));

    // Act
    const dynamo = grants.filter((g) => g.actions.some((a) => a.startsWith('dynamodb:')));

    // Assert
    for (const grant of dynamo) {
      expect(grant.resources).toEqual([arnOf(built, built.sluice.table)]);
      expect(grant.actions).toEqual(
        grant.actions.filter((a) =>
          [
            'dynamodb:GetItem',
            'dynamodb:Query',
            'dynamodb:BatchGetItem',
            'dynamodb:PutItem',
            'dynamodb:UpdateItem',
            'dynamodb:DeleteItem',
          ].includes(a),
        ),
      );
    }
  });

  it.each(all)('%s has no wildcard action and no "*" resource', (_path, built, spec) => {
    // Arrange
    const grants = functionGrants(built, functionOf(built, spec.id));

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
        .filter(([, built, spec]) =>
          s3(built, functionGrants(built, functionOf(built, spec.id)), 's3:PutObject').some((p) =>
            p.startsWith(prefix),
          ),
        )
        .map(([, , spec]) => spec.id);

    // Act
    const manifestWriters = writers('manifests/');
    const segmentWriters = writers('segments/');

    // Assert
    expect(manifestWriters).toEqual(Array(5).fill('coordinator'));
    expect(segmentWriters).toEqual(Array(5).fill('ingest'));
  });

  it('gives the roles no AWS managed policies', () => {
    // Arrange
    const roles = twoPhase.template.findResources('AWS::IAM::Role');

    // Act
    const managed = Object.values(roles).flatMap(
      (r) => (r as { Properties: { ManagedPolicyArns?: unknown[] } }).Properties.ManagedPolicyArns ?? [],
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

  it('creates a stream and an event-source mapping for each source of a join', () => {
    // Arrange
    const { template, sluice } = joined;

    // Act
    const mappings = template.findResources('AWS::Lambda::EventSourceMapping');

    // Assert
    expect(Object.keys(sluice.streams).sort()).toEqual(['fixture-left', 'fixture-right']);
    expect(Object.keys(mappings)).toHaveLength(2);
  });

  it('describes the same functions it deploys', () => {
    // Arrange
    const { sluice, template } = totals;

    // Act
    const ids = sluice.deployment.functions.map((f) => f.id);

    // Assert
    expect(ids).toEqual(['split', 'totals', 'recent', 'coordinator', 'ingest']);
    expect(Object.keys(template.findResources('AWS::Lambda::Function'))).toHaveLength(ids.length);
    expect(deployedFunction(sluice.deployment, 'totals').invokes).toEqual(['recent', 'totals']);
  });
});
