import type { StorageConfig } from '../policy/types.js';
import type { Storage } from './types.js';
import { UserError } from '../core/diagnostics.js';

/** Opens a storage by its kind; remote kinds load lazily with their SDKs. */
export async function openStorage(config: StorageConfig): Promise<Storage> {
  switch (config.type) {
    case 'local': {
      const { LocalStorage } = await import('./local/local-storage.js');
      return new LocalStorage(config.name, config.path);
    }
    case 'sftp':
    case 's3':
      throw new UserError(`storage "${config.name}": type ${config.type} is not available in this version of bkp yet (only local)`);
    default: {
      const never: never = config;
      throw new Error(`unknown storage type ${JSON.stringify(never)}`);
    }
  }
}
