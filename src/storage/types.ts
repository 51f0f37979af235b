import type { Readable } from 'node:stream';

/** One entry of a storage listing. */
export interface StoredObject {
  /** Slash-separated key relative to the storage root. */
  key: string;
  /** Filled when the listing gives it for free (S3, SFTP) or `detailed` was asked (local stats each file). */
  size?: number;
  modifiedAt?: Date;
}

/** Thrown by `putExclusive` when the key already exists (a held lock). */
export class AlreadyExistsError extends Error {
  readonly key: string;
  constructor(key: string) {
    super(`${key} already exists`);
    this.name = 'AlreadyExistsError';
    this.key = key;
  }
}

/** Progress callback: bytes written so far. */
export type OnProgress = (bytes: number) => void;

/**
 * One narrow interface for every storage kind (local, sftp, s3): list, put a stream, get a
 * stream, delete, exclusive create for locks. Storage does I/O and nothing else: catalogs,
 * manifests and retention are built on top of it.
 */
export interface Storage {
  readonly name: string;
  /** Human description without secrets, e.g. `local:/srv/backups`. */
  describe(): string;
  /** Fails with a clear error when the storage cannot be written (missing, a file, read-only). */
  checkWritable(): Promise<void>;
  /**
   * Every object whose key starts with `prefix` (a folder, ending in `/`, or '' for all),
   * recursively, in no particular order. Planning lists hundreds of thousands of keys, so local
   * storage only stats files when `detailed` is true.
   */
  list(prefix: string, opts?: { detailed?: boolean }): Promise<StoredObject[]>;
  /**
   * Streams `body` to `key` atomically: it is written under a temporary name (which `list`
   * shows as `<key>.partial-*`), flushed, then renamed. A failure leaves no object at `key`.
   */
  put(key: string, body: Readable, onProgress?: OnProgress): Promise<{ size: number }>;
  /** Writes a small object atomically (manifests, run records). */
  putText(key: string, text: string): Promise<void>;
  /** Creates a small object only if `key` does not exist; throws AlreadyExistsError otherwise. */
  putExclusive(key: string, text: string): Promise<void>;
  get(key: string): Promise<Readable>;
  getText(key: string): Promise<string>;
  /** Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Releases connections (sftp): call it when done, or the process may stay alive. The next call reconnects. */
  close?(): Promise<void> | void;
}

/** Marker in temporary names, so observers can tell an upload in progress (or abandoned) from an artifact. */
export const PARTIAL_MARKER = '.partial-';
