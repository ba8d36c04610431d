import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';

/**
 * True when a conditional DynamoDB write was refused because its condition did not hold: the
 * outcome the ledger's and the state store's conditional writes expect and handle. Checked by name
 * too, as errors crossing bundles or SDK copies are not always instances of the class.
 *
 * @example
 * try { await put(); } catch (e) { if (!isConditionFailure(e)) throw e; }
 */
export function isConditionFailure(error: unknown): boolean {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error as { name?: string }).name === 'ConditionalCheckFailedException'
  );
}
