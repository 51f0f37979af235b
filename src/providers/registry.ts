import type { Provider } from './types.js';
import { UserError } from '../core/diagnostics.js';

/**
 * Engines load lazily, by name: `bkp --version` and `bkp validate` never pay for a database
 * driver. Later engines add a line here.
 */
const loaders: Record<string, () => Promise<Provider>> = {
  files: async () => (await import('./files/index.js')).filesProvider,
  postgres: async () => (await import('./postgres/index.js')).postgresProvider,
  influxdb: async () => (await import('./influxdb/index.js')).influxdbProvider,
  etcd: async () => (await import('./etcd/index.js')).etcdProvider,
  elasticsearch: async () => (await import('./elasticsearch/index.js')).elasticsearchProvider,
  couchdb: async () => (await import('./couchdb/index.js')).couchdbProvider,
  mongodb: async () => (await import('./mongodb/index.js')).mongodbProvider,
};

export function knownEngines(): string[] {
  return Object.keys(loaders);
}

export async function loadProvider(engine: string): Promise<Provider> {
  const load = loaders[engine];
  if (!load) {
    throw new UserError(`engine "${engine}" is not available in this version of bkp (available: ${knownEngines().join(', ')})`);
  }
  return load();
}
