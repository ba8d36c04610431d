import { DeleteCommand, GetCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * The ledger's DynamoDB table, with the reads every item type makes: strongly consistent.
 *
 * @example
 * const reports = await new LedgerTable(dynamo, 'wordcount-ledger').queryAll('task#0000000007#1');
 */
export class LedgerTable {
  constructor(
    readonly dynamo: DynamoDBDocumentClient,
    readonly name: string,
  ) {}

  /** One item, or `undefined`. */
  async get(key: { readonly pk: string; readonly sk: string }): Promise<Record<string, unknown> | undefined> {
    const out = await this.dynamo.send(
      new GetCommand({ TableName: this.name, Key: key, ConsistentRead: true }),
    );
    return out.Item;
  }

  /** Deletes one item; deleting one that is gone already is not an error. */
  async delete(key: { readonly pk: string; readonly sk: string }): Promise<void> {
    await this.dynamo.send(new DeleteCommand({ TableName: this.name, Key: key }));
  }

  /** Every item under one partition key, in sort-key order, page by page. */
  async queryAll(pk: string): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.dynamo.send(
        new QueryCommand({
          TableName: this.name,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': pk },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      items.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }
}
