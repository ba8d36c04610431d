import { aroundRequests } from './middleware';

/**
 * Counts the AWS requests a run makes, by command (`PutObjectCommand`, `UpdateCommand`...), so
 * tests and tools can see what a batch costs: requests are what AWS bills.
 *
 * @example
 * const counter = new RequestCounter();
 * counter.attach(clients.dynamo);
 * counter.count('PutCommand');
 */
export class RequestCounter {
  private readonly counts = new Map<string, number>();

  /** Counts every request the client sends from now on (retries by the SDK included). */
  attach(client: unknown): void {
    aroundRequests(client, 'sluiceRequestCounter', (command, send) => {
      this.counts.set(command, (this.counts.get(command) ?? 0) + 1);
      return send();
    });
  }

  /** Requests of one command, or of all commands named. */
  count(...commands: string[]): number {
    return commands.reduce((total, c) => total + (this.counts.get(c) ?? 0), 0);
  }

  /** All counts, by command. */
  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.counts].sort(([a], [b]) => a.localeCompare(b)));
  }

  reset(): void {
    this.counts.clear();
  }
}
