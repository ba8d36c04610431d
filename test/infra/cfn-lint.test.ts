import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as kms from 'aws-cdk-lib/aws-kms';
import { afterAll, describe, expect, it } from 'vitest';
import { build, cfnLint, cfnLintAvailable, cfnLintTitle, type FixtureName } from './helpers';

/**
 * cfn-lint checks what CDK does not: property values against the CloudFormation resource schemas,
 * and dependency cycles (E3004). The stateful and join fixtures, with and without a customer-managed
 * key, cover the self-invoke policies and every encryption setting. (The word-count example is
 * linted after its full synth, in app.test.ts.)
 */
describe('cfn-lint', () => {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-lint-'));

  afterAll(() => {
    fs.rmSync(outdir, { recursive: true, force: true });
  });

  it.skipIf(!cfnLintAvailable())(
    cfnLintTitle('finds nothing in the stateful and join templates, with and without a KMS key'),
    () => {
      // Arrange
      const fixtures: FixtureName[] = ['running-totals', 'joined-windows'];
      const files = fixtures.flatMap((name) =>
        [false, true].map((encrypted) => {
          const { template } = build(
            name,
            encrypted
              ? (stack) => ({ encryptionKey: new kms.Key(stack, 'Key', { enableKeyRotation: true }) })
              : {},
          );
          const file = path.join(outdir, `${name}${encrypted ? '-kms' : ''}.template.json`);
          fs.writeFileSync(file, JSON.stringify(template.toJSON(), null, 1));
          return file;
        }),
      );

      // Act
      const findings = cfnLint(files);

      // Assert
      expect(findings).toEqual([]);
    },
  );

  it.skipIf(!cfnLintAvailable())(cfnLintTitle('reports a template error (the check can fail)'), () => {
    // Arrange
    const { template } = build('single-phase');
    const broken = template.toJSON() as {
      Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
    };
    const queue = Object.values(broken.Resources).find((r) => r.Type === 'AWS::SQS::Queue');
    if (!queue) throw new Error('no queue');
    queue.Properties.MessageRetentionPeriod = 'two weeks';
    const file = path.join(outdir, 'broken.template.json');
    fs.writeFileSync(file, JSON.stringify(broken));

    // Act
    const findings = cfnLint([file]);

    // Assert
    expect(findings.map((f) => f.level)).toContain('Error');
  });
});
