import { UserError } from '../../core/diagnostics.js';

/** The fields of an `s3` storage in the policy (`storage_s3` in schemas/policy.schema.json), after interpolation. */
export interface S3Options {
  bucket: string;
  /** Key prefix inside the bucket, e.g. `prod/`; a missing trailing `/` is added. Default: none. */
  prefix?: string;
  /** Default `us-east-1`. */
  region?: string;
  /** URL of an S3-compatible server (MinIO, Ceph, s3rver…), `http(s)://host[:port]`. Default: AWS. */
  endpoint?: string;
  /** Bucket in the path, not the host name. Default: true when `endpoint` is set, false for AWS. */
  force_path_style?: boolean;
}

/** Options as the S3 client uses them: every default applied. */
export interface ResolvedS3Options {
  bucket: string;
  /** '' or ends with `/`; never starts with `/`. */
  prefix: string;
  region: string;
  /** Normalised URL without credentials or trailing slash, or undefined for AWS. */
  endpoint?: string;
  forcePathStyle: boolean;
}

/**
 * Reads the unparsed `options` of an s3 storage (`OtherStorageConfig.options`). The schema has
 * already checked them; this re-checks the types so a bad value fails with a clear message
 * rather than deep inside the SDK.
 */
export function parseS3Options(storageName: string, options: Record<string, unknown>): S3Options {
  const fail = (msg: string): never => {
    throw new UserError(`storage "${storageName}": ${msg}`);
  };
  const str = (k: string): string | undefined => {
    const v = options[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') return fail(`${k} must be a string`);
    return v;
  };
  const bucket = str('bucket');
  if (!bucket) return fail('bucket is required');
  const fps = options.force_path_style;
  if (fps !== undefined && typeof fps !== 'boolean') fail('force_path_style must be true or false');
  const out: S3Options = { bucket };
  const prefix = str('prefix');
  const region = str('region');
  const endpoint = str('endpoint');
  if (prefix !== undefined) out.prefix = prefix;
  if (region !== undefined && region !== '') out.region = region;
  if (endpoint !== undefined && endpoint !== '') out.endpoint = endpoint;
  if (typeof fps === 'boolean') out.force_path_style = fps;
  return out;
}

/** `prod` → `prod/`, `/prod/` → `prod/`, `` → ``. */
export function normalizePrefix(prefix: string | undefined): string {
  const p = (prefix ?? '').replace(/^\/+/, '');
  if (p === '') return '';
  return p.endsWith('/') ? p : `${p}/`;
}

export function resolveS3Options(storageName: string, o: S3Options): ResolvedS3Options {
  if (!o.bucket) throw new UserError(`storage "${storageName}": bucket is required`);
  let endpoint: string | undefined;
  if (o.endpoint !== undefined && o.endpoint !== '') {
    let url: URL;
    try {
      url = new URL(o.endpoint);
    } catch {
      throw new UserError(`storage "${storageName}": endpoint "${o.endpoint}" is not a URL (write it as http://host:port or https://host)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new UserError(`storage "${storageName}": endpoint "${url.protocol}//${url.host}" must start with http:// or https://`);
    }
    // Credentials never come from the URL (the AWS chain provides them) and must never be printed.
    url.username = '';
    url.password = '';
    endpoint = url.toString().replace(/\/+$/, '');
  }
  return {
    bucket: o.bucket,
    prefix: normalizePrefix(o.prefix),
    region: o.region ?? 'us-east-1',
    ...(endpoint !== undefined ? { endpoint } : {}),
    forcePathStyle: o.force_path_style ?? endpoint !== undefined,
  };
}
