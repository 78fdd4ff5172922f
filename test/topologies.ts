import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { tmpDir } from './tmp.js';

/** A loopback port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

type Server = { port: number; child: ChildProcess };

/** A redis-server (or Sentinel) of Debian's package on a loopback port, its data in a directory of its own. */
async function startServer(args: string[], port: number): Promise<Server> {
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    probe.on('error', () => {});
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return { port, child };
    } catch {
      probe.disconnect();
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server ${args.join(' ')} did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** SIGKILL every server and wait until each has exited. */
async function killAll(servers: Server[]): Promise<void> {
  await Promise.all(
    servers.map(
      ({ child }) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe().catch(() => undefined);
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export type SentinelSetup = {
  name: string;
  /** REDIS_SENTINELS for the product. */
  sentinels: string;
  /** The port of the current master, as the Sentinels say. */
  masterPort(): Promise<number>;
  /** SENTINEL FAILOVER: the replica becomes the master; resolves once the Sentinels name the new one. */
  failover(): Promise<number>;
  stop(): Promise<void>;
};

/** One master, one replica and three Sentinels (quorum 2) on loopback, as an operator would run them. */
export async function startSentinelSetup(name = 'mymaster'): Promise<SentinelSetup> {
  const dir = tmpDir('sentinel');
  const servers: Server[] = [];
  const common = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'no'];
  try {
    const masterPort = await freePort();
    servers.push(await startServer(['--port', String(masterPort), '--dir', dir, '--dbfilename', 'm.rdb', ...common], masterPort));
    const replicaPort = await freePort();
    servers.push(await startServer(['--port', String(replicaPort), '--dir', dir, '--dbfilename', 'r.rdb', '--replicaof', '127.0.0.1', String(masterPort), ...common], replicaPort));
    const replica = new Redis({ port: replicaPort, host: '127.0.0.1' });
    await until('the replica in sync', async () => ((await replica.info('replication')).includes('master_link_status:up') ? true : undefined));
    replica.disconnect();

    const sentinelPorts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = path.join(dir, `sentinel-${i}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          'protected-mode no',
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 5000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      servers.push(await startServer([conf, '--sentinel'], port));
      sentinelPorts.push(port);
    }
    const ask = async <T>(fn: (s: Redis) => Promise<T>): Promise<T> => {
      const s = new Redis({ port: sentinelPorts[0]!, host: '127.0.0.1', lazyConnect: true });
      try {
        await s.connect();
        return await fn(s);
      } finally {
        s.disconnect();
      }
    };
    const masterOf = async () => Number(((await ask((s) => s.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name))) as string[])[1]);
    // Ready when every Sentinel knows the replica and the other Sentinels (a failover needs both).
    await until('the Sentinels know each other and the replica', () =>
      ask(async (s) => {
        const master = (await s.call('SENTINEL', 'MASTER', name)) as string[];
        const field = (k: string) => Number(master[master.indexOf(k) + 1]);
        return field('num-slaves') >= 1 && field('num-other-sentinels') >= 2 ? true : undefined;
      }),
    );
    return {
      name,
      sentinels: sentinelPorts.map((p) => `127.0.0.1:${p}`).join(','),
      masterPort: masterOf,
      async failover() {
        const before = await masterOf();
        await ask((s) => s.call('SENTINEL', 'FAILOVER', name));
        return until('the failover', async () => {
          const now = await masterOf();
          return now !== before ? now : undefined;
        });
      },
      stop: () => killAll(servers),
    };
  } catch (err) {
    await killAll(servers);
    throw err;
  }
}

/** A plain redis-server (no cluster mode, no replica) on a loopback port: what a wrong REDIS_CLUSTER_NODES may point at. */
export async function startPlainRedis(): Promise<{ port: number; stop(): Promise<void> }> {
  const dir = tmpDir('plain-redis');
  const port = await freePort();
  const server = await startServer(['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], port);
  return { port, stop: () => killAll([server]) };
}

export type ClusterSetup = {
  /** REDIS_CLUSTER_NODES for the product: `127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`. */
  nodes: string;
  /** The masters' client ports, in the order of `nodes`. */
  ports: number[];
  stop(): Promise<void>;
};

/**
 * A Redis Cluster of three masters (no replicas) on loopback, made with `redis-cli --cluster create` as an
 * operator would; resolves once every node says `cluster_state:ok` with all 16384 slots assigned.
 */
export async function startClusterSetup(): Promise<ClusterSetup> {
  const dir = tmpDir('cluster');
  const servers: Server[] = [];
  const common = ['--cluster-enabled', 'yes', '--cluster-node-timeout', '2000', '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--protected-mode', 'no', '--daemonize', 'no'];
  try {
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      // The bus port is port + 10000 unless set: past 55535 that is no port at all, so take a free one.
      const busPort = await freePort();
      const args = ['--port', String(port), '--cluster-port', String(busPort), '--cluster-config-file', path.join(dir, `nodes-${port}.conf`), '--dir', dir];
      servers.push(await startServer([...args, ...common], port));
      ports.push(port);
    }
    const nodes = ports.map((p) => `127.0.0.1:${p}`);
    // execFile rejects on a non-zero exit code; keep what the tool printed.
    await promisify(execFile)('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 }).catch(
      (err: Error & { stdout?: string }) => {
        throw new Error(`redis-cli --cluster create failed: ${err.message}${err.stdout ?? ''}`);
      },
    );
    for (const port of ports) {
      await until(`node ${port}: cluster_state:ok with every slot`, async () => {
        const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        r.on('error', () => {});
        try {
          await r.connect();
          const info = (await r.call('CLUSTER', 'INFO')) as string;
          return info.includes('cluster_state:ok') && info.includes('cluster_slots_ok:16384') ? true : undefined;
        } finally {
          r.disconnect();
        }
      });
    }
    return { nodes: nodes.join(','), ports, stop: () => killAll(servers) };
  } catch (err) {
    await killAll(servers);
    throw err;
  }
}
