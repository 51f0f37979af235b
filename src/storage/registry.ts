import type { StorageConfig } from '../policy/types.js';
import type { Storage } from './types.js';

/** Every storage opened in this process, so the CLI can close their connections at the end. */
const opened: Storage[] = [];

/** Opens a storage by its kind; remote kinds load lazily with their SDKs. */
export async function openStorage(config: StorageConfig, warn: (message: string) => void = (m) => process.stderr.write(`Warning: ${m}\n`)): Promise<Storage> {
  const storage = await create(config, warn);
  opened.push(storage);
  return storage;
}

async function create(config: StorageConfig, warn: (message: string) => void): Promise<Storage> {
  switch (config.type) {
    case 'local': {
      const { LocalStorage } = await import('./local/local-storage.js');
      return new LocalStorage(config.name, config.path);
    }
    case 'sftp': {
      const { SftpStorage } = await import('./sftp/sftp-storage.js');
      const { parseSftpOptions } = await import('./sftp/options.js');
      return new SftpStorage(config.name, parseSftpOptions(config.name, config.options));
    }
    case 's3': {
      const { S3Storage } = await import('./s3/s3-storage.js');
      return S3Storage.fromConfig({ name: config.name, options: config.options }, { warn });
    }
    default: {
      const never: never = config;
      throw new Error(`unknown storage type ${JSON.stringify(never)}`);
    }
  }
}

/** Closes every storage this process opened (SFTP connections would keep it alive). */
export async function closeAllStorages(): Promise<void> {
  await Promise.all(opened.splice(0).map(async (s) => s.close?.()));
}
