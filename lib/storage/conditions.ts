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

/**
 * Makes a conditional write: true if it was made, false if its condition did not hold (someone
 * else got there first). Any other error is thrown.
 *
 * @example
 * const moved = await conditionalWrite(() => dynamo.send(new UpdateCommand({ ...update, ConditionExpression })));
 */
export async function conditionalWrite(write: () => Promise<unknown>): Promise<boolean> {
  try {
    await write();
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}
