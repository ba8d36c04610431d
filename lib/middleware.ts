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
 * Wraps every request a client sends: `around(commandName, send, input)` runs it. The usage meter
 * counts requests and capacity units with it; the local runtime also injects crashes after writes
 * and refuses what a function's role would refuse.
 *
 * @example
 * aroundRequests(clients.s3, 'counter', async (command, send) => { counts[command]++; return send(); });
 */
export function aroundRequests(
  client: unknown,
  name: string,
  around: (commandName: string, send: () => Promise<unknown>, input: unknown) => Promise<unknown>,
): void {
  (client as MiddlewareClient).middlewareStack.add(
    (next, context) => (args) =>
      around(context.commandName ?? 'unknown', () => next(args), (args as { input?: unknown }).input),
    { step: 'initialize', name },
  );
}
