import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../src/config.js';
import type { Inventory } from '../src/inventory.js';
import type { BackupCatalog } from '../src/backups/catalog.js';
import type { RestoreCatalog } from '../src/backups/restores.js';
import type { CancelListener } from '../src/coordination/cancel-listener.js';
import type { RecordStore } from '../src/store/records.js';
import type { GlobalSlots, TenantSlots } from '../src/coordination/tenant-slots.js';
import type { ServerLocks } from '../src/coordination/server-locks.js';
import type { RunningCommands } from '../src/coordination/running-commands.js';

/** What the workers share: the stores and coordination they use, built once by the workers plugin. */
export type WorkerDeps = {
  config: Config;
  inventory: Inventory;
  records: RecordStore;
  logger: Logger;
  /** Absent in the benchmark's bare wiring: no per-server locks, no cancel requests. */
  locks?: ServerLocks;
  cancels?: CancelListener;
  catalog?: BackupCatalog;
  /** The completed restores (and their retention); absent in the benchmark's bare wiring. */
  restores?: RestoreCatalog;
  /** The workers' connection, for writes that belong to no store (indexing a schedule's runs). */
  redis?: Redis;
  /** The update commands running on servers, so that one a dead worker process left behind is ended first. */
  commands?: RunningCommands;
  /** Fair scheduling between tenants; absent in the benchmark's bare wiring. */
  slots?: TenantSlots;
  /** GLOBAL_MAX_ACTIVE: absent when it is 0 (no cap). */
  global?: GlobalSlots;
  /** Publish "job X has new log lines" for event streams. */
  notifyLog?: (jobId: string) => Promise<unknown>;
  /** The jobs this process is working on now (id -> type), for the shutdown to say which it cut short. */
  running?: Map<string, string>;
};

/** The reason an active job's work is stopped with when the process stops past SHUTDOWN_TIMEOUT_MS: the job runs again, the attempt not counted. */
export const SHUTDOWN_CUT = 'cut short by a shutdown';
