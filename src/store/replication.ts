import type { Redis } from 'ioredis';

/** Jobs the master accepted that too few replicas confirmed in time: a failover now could lose them. */
export class NotReplicatedError extends Error {
  override name = 'NotReplicatedError';
  constructor(
    readonly jobIds: readonly string[],
    readonly acked: number,
    readonly wanted: number,
    readonly waitMs: number,
  ) {
    super(
      `Redis took ${jobIds.length === 1 ? `job ${jobIds[0]}` : `${jobIds.length} jobs (${jobIds[0]}, ...)`} but ${acked} of the ${wanted} replica(s) ` +
        `it needs confirmed within ${waitMs} ms, so a failover now could lose it. Look it up (GET /api/jobs/{id}) before sending the request again.`,
    );
  }
}

/**
 * WAIT, once per turn of the event loop: the writes every request of the
 * turn made on the connection are confirmed by one round trip, however many
 * requests there were. Resolves to the number of replicas that hold them.
 */
export class ReplicaConfirmer {
  private pending: Promise<number> | undefined;

  constructor(
    private readonly redis: Redis,
    readonly wanted: number,
    readonly waitMs: number,
  ) {}

  /** Wait until `wanted` replicas hold what this connection wrote so far; throw NotReplicatedError naming `jobIds` when they do not in time. */
  async confirm(jobIds: readonly string[]): Promise<void> {
    this.pending ??= new Promise<number>((resolve, reject) => {
      setImmediate(() => {
        this.pending = undefined;
        this.redis.call('WAIT', this.wanted, this.waitMs).then((n) => resolve(Number(n)), reject);
      });
    });
    const acked = await this.pending;
    if (acked < this.wanted) throw new NotReplicatedError(jobIds, acked, this.wanted, this.waitMs);
  }
}
