/**
 * Collects what many concurrent requests want written during one turn of the
 * event loop and writes it with one call at the end of the turn. Under load,
 * fifty requests that each add one job cost one pipelined write to Redis
 * instead of fifty; a lone request waits for nothing but the end of its turn.
 * Every caller of a batch learns the batch's outcome.
 */
export class TurnBatcher<T> {
  private items: T[] = [];
  private flushing: Promise<void> | undefined;

  constructor(private readonly write: (items: T[]) => Promise<unknown>) {}

  push(...items: T[]): Promise<void> {
    for (const item of items) this.items.push(item);
    this.flushing ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        const batch = this.items;
        this.items = [];
        this.flushing = undefined;
        this.write(batch).then(() => resolve(), reject);
      });
    });
    return this.flushing;
  }
}
