import type { TestProject } from 'vitest/node';
import { removeTmpDirs } from './tmp.js';
import { startClusterSetup } from './topologies.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** REDIS_CLUSTER_NODES of the Cluster the `cluster` project runs the product's tests on. */
    redisCluster?: string;
  }
}

/** The `cluster` project: the same tests of the API, on a three-master Redis Cluster the suite starts itself. */
export async function setup(project: TestProject) {
  const cluster = await startClusterSetup();
  project.provide('redisCluster', cluster.nodes);
  return async () => {
    await cluster.stop();
    removeTmpDirs();
  };
}
