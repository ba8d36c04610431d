/** The part of an AWS SDK v3 client that middleware is added through. */
interface MiddlewareClient {
  middlewareStack: {
    add(
      middleware: (
        next: (args: unknown) => Promise<unknown>,
        context: { commandName?: string },
      ) => (args: unknown) => Promise<unknown>,
      options: { step: 'initialize'; name: string },
    ): void;
  };
}

/**
 * Wraps every request a client sends: `around(commandName, send)` runs it. The local runtime uses
 * it to count requests and to inject crashes after writes.
 *
 * @example
 * aroundRequests(clients.s3, 'counter', async (command, send) => { counts[command]++; return send(); });
 */
export function aroundRequests(
  client: unknown,
  name: string,
  around: (commandName: string, send: () => Promise<unknown>) => Promise<unknown>,
): void {
  (client as MiddlewareClient).middlewareStack.add(
    (next, context) => (args) => around(context.commandName ?? 'unknown', () => next(args)),
    { step: 'initialize', name },
  );
}
