import { AsyncLocalStorage } from 'node:async_hooks';
import type { DeployedFunction, LedgerReadAction, LedgerWriteAction } from '../lib/deployment';
import { aroundRequests } from '../lib/middleware';

/**
 * The error a role's missing permission gives, shaped as the AWS SDK gives it (a service exception
 * with a name and HTTP metadata), so the runtime classifies it as it would on AWS: permanent.
 */
export class AccessDeniedError extends Error {
  readonly $metadata: { readonly httpStatusCode: number };
  constructor(
    message: string,
    override readonly name: 'AccessDeniedException' | 'AccessDenied',
  ) {
    super(message);
    this.$metadata = { httpStatusCode: name === 'AccessDenied' ? 403 : 400 };
  }
}

/** Patterns compiled once: every request of a local run is checked against a few of them. */
const compiled = new Map<string, RegExp>();

/** IAM's `StringLike`: `*` matches any run of characters, `?` any one. */
function like(pattern: string, value: string): boolean {
  let regex = compiled.get(pattern);
  if (!regex) {
    const source = pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.');
    regex = new RegExp(`^${source}$`, 's');
    compiled.set(pattern, regex);
  }
  return regex.test(value);
}

const DYNAMO_ACTIONS: Readonly<Record<string, LedgerReadAction | LedgerWriteAction>> = {
  GetItemCommand: 'dynamodb:GetItem',
  QueryCommand: 'dynamodb:Query',
  BatchGetItemCommand: 'dynamodb:BatchGetItem',
  PutItemCommand: 'dynamodb:PutItem',
  UpdateItemCommand: 'dynamodb:UpdateItem',
  DeleteItemCommand: 'dynamodb:DeleteItem',
};

interface DynamoInput {
  readonly TableName?: string;
  readonly Key?: { readonly pk?: unknown };
  readonly Item?: { readonly pk?: unknown };
  readonly KeyConditionExpression?: string;
  readonly ExpressionAttributeValues?: Readonly<Record<string, unknown>>;
  readonly RequestItems?: Readonly<Record<string, { readonly Keys?: readonly { readonly pk?: unknown }[] }>>;
}

/** The table and leading keys (`pk` values) a DynamoDB request touches. */
function leadingKeys(command: string, input: DynamoInput): { tables: string[]; keys: unknown[] } {
  switch (command) {
    case 'BatchGetItemCommand': {
      const items = Object.entries(input.RequestItems ?? {});
      return {
        tables: items.map(([table]) => table),
        keys: items.flatMap(([, request]) => (request.Keys ?? []).map((key) => key.pk)),
      };
    }
    case 'QueryCommand': {
      const placeholder = /\bpk\s*=\s*(:\w+)/.exec(input.KeyConditionExpression ?? '')?.[1];
      return {
        tables: [input.TableName ?? ''],
        keys: [placeholder ? input.ExpressionAttributeValues?.[placeholder] : undefined],
      };
    }
    case 'PutItemCommand':
      return { tables: [input.TableName ?? ''], keys: [input.Item?.pk] };
    default:
      return { tables: [input.TableName ?? ''], keys: [input.Key?.pk] };
  }
}

/**
 * Refuses locally what a deployed function's role refuses on AWS. Each local invocation runs inside
 * `run(fn, ...)`; the SDK middleware checks every S3 and DynamoDB request it makes against what the
 * deployment description grants that function (the same description the CDK construct turns into
 * IAM statements), so a runtime change that reaches outside its grants fails a local test instead of
 * a deployment. Requests outside any function (the test harness, provisioning) pass.
 *
 * @example
 * const guard = new AccessGuard(bucket, table);
 * guard.attach(clients);
 * await guard.run(deployedFunction(deployment, 'count'), () => handlers.reduce(event));
 */
export class AccessGuard {
  private readonly current = new AsyncLocalStorage<DeployedFunction>();
  /** Every refusal, for tests to look at. */
  readonly refused: string[] = [];

  constructor(
    private readonly bucket: string,
    private readonly table: string,
  ) {}

  /** Runs one invocation of a function under its grants. */
  run<T>(fn: DeployedFunction, work: () => Promise<T>): Promise<T> {
    return this.current.run(fn, work);
  }

  /** Checks the requests of the S3 and DynamoDB clients from now on. */
  attach(clients: { readonly s3: unknown; readonly dynamo: unknown }): void {
    aroundRequests(clients.s3, 'sluiceAccessGuardS3', async (command, send, input) => {
      this.checkS3(command, input as { Bucket?: string; Key?: string });
      return send();
    });
    aroundRequests(clients.dynamo, 'sluiceAccessGuardDynamo', async (command, send, input) => {
      this.checkDynamo(command, input as DynamoInput);
      return send();
    });
  }

  private deny(fn: DeployedFunction, what: string, name: AccessDeniedError['name']): never {
    const message = `function '${fn.id}' is not allowed to ${what}`;
    this.refused.push(message);
    throw new AccessDeniedError(message, name);
  }

  private checkS3(command: string, input: { Bucket?: string; Key?: string }): void {
    const fn = this.current.getStore();
    if (!fn) return;
    const key = input.Key ?? '';
    const prefixes =
      command === 'GetObjectCommand'
        ? fn.objects.read
        : command === 'PutObjectCommand'
          ? fn.objects.write
          : undefined;
    const action = `${command.replace(/Command$/, '')} s3://${input.Bucket ?? ''}/${key}`;
    if (!prefixes || input.Bucket !== this.bucket) this.deny(fn, action, 'AccessDenied');
    if (!prefixes.some((prefix) => like(`${prefix}*`, key))) this.deny(fn, action, 'AccessDenied');
  }

  private checkDynamo(command: string, input: DynamoInput): void {
    const fn = this.current.getStore();
    if (!fn) return;
    const action = DYNAMO_ACTIONS[command];
    if (!action) this.deny(fn, `call DynamoDB ${command}`, 'AccessDeniedException');
    const reading = (fn.ledger.readActions as readonly string[]).includes(action);
    const writing = (fn.ledger.writeActions as readonly string[]).includes(action);
    const expiring = action === 'dynamodb:DeleteItem' ? (fn.ledger.expire ?? []) : [];
    if (!reading && !writing && expiring.length === 0) this.deny(fn, action, 'AccessDeniedException');
    const patterns = reading ? fn.ledger.read : [...(writing ? fn.ledger.write : []), ...expiring];
    const { tables, keys } = leadingKeys(command, input);
    for (const table of tables) {
      if (table !== this.table) this.deny(fn, `${action} on table ${table}`, 'AccessDeniedException');
    }
    for (const key of keys) {
      if (typeof key !== 'string' || !patterns.some((pattern) => like(pattern, key))) {
        this.deny(fn, `${action} on leading key ${JSON.stringify(key)}`, 'AccessDeniedException');
      }
    }
  }
}
