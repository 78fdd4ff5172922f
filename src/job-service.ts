import { randomUUID } from 'node:crypto';
import { BadRequestError, NotFoundError } from './errors.js';
import { declaresKind, type Inventory, type Server } from './inventory.js';
import type { JobStore } from './job-store.js';
import { queueOfType, type BackupData, type JobData, type JobOptions, type JobState, type JobType, type QueueName } from './job-types.js';
import { visibleTenant, type Principal } from './tenant.js';

export type Submitted = { jobId: string; queue: QueueName; type: JobType; state: JobState; recordId: string };

/**
 * Turns a validated request into a job: checks the server is one the caller
 * may act on and declares this kind of work, then enqueues it for the
 * server's tenant.
 */
export class JobService {
  constructor(
    readonly store: JobStore,
    readonly inventory: Inventory,
  ) {}

  /** The server `principal` may see, or a 404 identical to a missing one. */
  server(principal: Principal, id: string): Server {
    const server = this.inventory.get(id, visibleTenant(principal));
    if (!server) throw new NotFoundError(`Server "${id}"`, 'SERVER_NOT_FOUND');
    return server;
  }

  async submit(principal: Principal, type: JobType, data: JobData, options: JobOptions = {}): Promise<Submitted> {
    const queue = queueOfType(type);
    const server = this.inventory.get(data.serverId, visibleTenant(principal));
    if (!server) {
      throw new BadRequestError(`data.serverId: there is no server "${data.serverId}" in the inventory`, 'UNKNOWN_SERVER');
    }
    if (!declaresKind(server, queue)) {
      throw new BadRequestError(`data.serverId: server "${server.id}" declares no "${queue}" section, so it cannot run ${type} jobs`, 'KIND_NOT_DECLARED');
    }
    if (queue === 'backup') {
      const backup = data as BackupData;
      if (backup.encryption) {
        throw new BadRequestError('data.encryption: encrypted backups are not available on this server (no encryption key is configured)', 'ENCRYPTION_NOT_CONFIGURED');
      }
      if (backup.backup_type === 'incremental') {
        throw new BadRequestError('data.backup_type: incremental backups are not available yet; use "full"', 'INCREMENTAL_NOT_SUPPORTED');
      }
    }
    const recordId = randomUUID();
    const added = await this.store.add(
      type,
      { tenant: server.tenant, requestedBy: principal.sub, recordId, input: data },
      options,
    );
    return { ...added, type, recordId };
  }
}
