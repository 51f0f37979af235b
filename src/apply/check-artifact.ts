import { pipeline } from 'node:stream';
import { Writable } from 'node:stream';
import { pipeline as pipe } from 'node:stream/promises';
import type { Readable, Transform } from 'node:stream';
import type { BackupRecord, Manifest } from '../planner/types.js';
import type { Storage } from '../storage/types.js';
import type { Provider } from '../providers/types.js';
import type { Target } from '../policy/types.js';
import { CodecError, decodeStreams, isLegacyManifest, needsKey } from '../storage/codec/index.js';
import { HashingStream } from './write-backup.js';

/** The outcome of checking one artifact against its manifest. */
export interface ArtifactCheck {
  ok: boolean;
  problems: string[];
  details: string[];
  /** Set when the artifact could not be decrypted: a wrong or missing key (not damage). */
  keyProblem?: string;
}

export interface CheckOptions {
  /** The storage's `encryption.key`, when the policy gives one. */
  key?: string;
  /** Decode (decrypt, decompress) and check `content_sha256` even without `deep`. */
  decode?: boolean;
}

/**
 * Reads a whole artifact once: size and sha256 of the stored bytes against the manifest (no key
 * needed), and, with `deep`, `decode`, or an encrypted artifact whose key is given, also decodes
 * it (every GCM chunk authenticated, the decompressor's own checks) and checks the content's
 * sha256; with `deep` the engine's own check of its format runs on the decoded bytes (every tar
 * entry, `pg_restore --list`…).
 */
export async function checkArtifact(storage: Storage, record: BackupRecord, manifest: Manifest, deep?: { provider: Provider; target: Target }, opts: CheckOptions = {}): Promise<ArtifactCheck> {
  const problems: string[] = [];
  const details: string[] = [];
  const subject = { storage: storage.name, id: manifest.id };
  const encrypted = needsKey(manifest);
  const decode = !isLegacyManifest(manifest) && (deep !== undefined || opts.decode === true || (encrypted && opts.key !== undefined));
  let decoders: Transform[] = [];
  let keyProblem: string | undefined;
  if (decode) {
    try {
      decoders = decodeStreams(manifest, opts.key, { subject });
    } catch (err) {
      if (!(err instanceof CodecError)) throw err;
      problems.push(err.message);
      if (err.problem === 'missing_key') keyProblem = err.message;
    }
  }
  if (problems.length > 0) {
    // Cannot decode: the stored bytes can still be checked.
    const sum = await storedDigest(storage, record.key).catch((err: Error) => ({ error: err.message }));
    if ('error' in sum) problems.push(sum.error);
    else problems.unshift(...storedProblems(sum, manifest));
    return { ok: false, problems, details, keyProblem };
  }
  if (encrypted && !decode) details.push('encrypted: stored bytes checked, contents not decrypted (no key)');

  let source: Readable;
  try {
    source = await storage.get(record.key);
  } catch (err) {
    return { ok: false, problems: [(err as Error).message], details };
  }
  const stored = new HashingStream();
  const content = decoders.length ? new HashingStream() : stored;
  // The first decoder failure (wrong key, chunk N tampered with) is what the user reads, rather
  // than the consumer's echo of it ("the tar.gz archive is truncated…").
  let codecError: Error | undefined;
  for (const d of decoders) d.once('error', (err: Error) => (codecError ??= err));
  pipeline(decoders.length ? [source, stored, ...decoders, content] : [source, stored], () => undefined);
  try {
    if (deep) details.push(...(await deep.provider.verifyDeep(deep.target, content, manifest)));
    else await drain(content);
  } catch (err) {
    const e = codecError ?? (err as Error);
    problems.push(codecError ? e.message : `${deep ? 'deep check' : 'read'} failed: ${e.message}`);
    if (e instanceof CodecError && e.problem === 'wrong_key') keyProblem = e.message;
    content.destroy();
  }
  if (problems.length === 0 && codecError) problems.push(codecError.message);
  if (problems.length === 0) {
    const sum = { bytes: stored.bytes, sha256: stored.digest() };
    problems.push(...storedProblems(sum, manifest));
    if (content !== stored && manifest.content_sha256 !== undefined) {
      const c = content.digest();
      if (manifest.content_size !== undefined && content.bytes !== manifest.content_size) problems.push(`decoded contents are ${content.bytes} bytes, manifest says ${manifest.content_size}`);
      if (c !== manifest.content_sha256) problems.push(`decoded contents' sha256 ${c.slice(0, 16)}… does not match the manifest's content_sha256 ${manifest.content_sha256.slice(0, 16)}…`);
    }
  } else if (!keyProblem) {
    // Decoding stopped early: still say whether the stored bytes are the ones the manifest describes.
    const sum = await storedDigest(storage, record.key).catch(() => undefined);
    if (sum) problems.unshift(...storedProblems(sum, manifest));
  }
  return { ok: problems.length === 0, problems, details, keyProblem };
}

function storedProblems(sum: { bytes: number; sha256: string }, manifest: Manifest): string[] {
  const out: string[] = [];
  if (sum.bytes !== manifest.size) out.push(`size ${sum.bytes} bytes, manifest says ${manifest.size}`);
  if (sum.sha256 !== manifest.sha256) out.push(`sha256 ${sum.sha256.slice(0, 16)}… does not match the manifest's ${manifest.sha256.slice(0, 16)}…`);
  return out;
}

/** Size and sha256 of the stored bytes, read once more (only on a failure path). */
async function storedDigest(storage: Storage, key: string): Promise<{ bytes: number; sha256: string }> {
  const hashing = new HashingStream();
  const stream = pipeline(await storage.get(key), hashing, () => undefined);
  await drain(stream);
  return { bytes: hashing.bytes, sha256: hashing.digest() };
}

/** Reads a stream to its end; rejects with its error (`.pipe` would wait forever on one). */
async function drain(stream: Readable): Promise<void> {
  await pipe(stream, new Writable({ write: (_c, _e, cb) => cb() }));
}
