import { UserError } from '../../core/diagnostics.js';

/** A field of an unknown thrown value, without `any`. */
function field(err: unknown, name: string): unknown {
  return err !== null && typeof err === 'object' && name in err ? (err as Record<string, unknown>)[name] : undefined;
}

/** The S3 error code (`NoSuchBucket`, `AccessDenied`…) or the SDK error name. */
export function s3ErrorName(err: unknown): string | undefined {
  const code = field(err, 'Code');
  if (typeof code === 'string') return code;
  const name = field(err, 'name');
  return typeof name === 'string' ? name : undefined;
}

/** The HTTP status of an S3 answer, when there was one. */
export function httpStatus(err: unknown): number | undefined {
  const meta = field(err, '$metadata');
  const status = field(meta, 'httpStatusCode');
  return typeof status === 'number' ? status : undefined;
}

/** A Node network error code (`ECONNREFUSED`…), when the request never got an answer. */
export function networkCode(err: unknown): string | undefined {
  const code = field(err, 'code');
  return typeof code === 'string' && /^E[A-Z_]+$/.test(code) ? code : undefined;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function isNotFound(err: unknown): boolean {
  const name = s3ErrorName(err);
  return name === 'NoSuchKey' || name === 'NotFound' || (httpStatus(err) === 404 && name !== 'NoSuchBucket');
}

export function isPreconditionFailed(err: unknown): boolean {
  return s3ErrorName(err) === 'PreconditionFailed' || httpStatus(err) === 412;
}

/** AWS answers 409 when two conditional writes to one key race; the loser may retry. */
export function isConditionalConflict(err: unknown): boolean {
  return s3ErrorName(err) === 'ConditionalRequestConflict' || httpStatus(err) === 409;
}

/** The server does not implement conditional writes (If-None-Match on PUT). */
export function isNotImplemented(err: unknown): boolean {
  return s3ErrorName(err) === 'NotImplemented' || httpStatus(err) === 501;
}

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is the S3 server running, and is the endpoint right?)',
  ENOTFOUND: 'host name not found (check the endpoint)',
  EAI_AGAIN: 'host name could not be resolved (DNS failure)',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'connection reset by the server',
  EPIPE: 'connection closed by the server',
  CERT_HAS_EXPIRED: 'the server TLS certificate has expired',
};

export interface ErrorContext {
  /** `storage "NAME" (s3://bucket/prefix at endpoint)` */
  where: string;
  bucket: string;
  /** `http://host:port`, or `AWS (region R)`. */
  server: string;
  /** What was being done: `writing KEY`, `listing PREFIX`… */
  doing: string;
  /** A bucket-level request (no key): a bare 404 means the bucket is missing. */
  bucketCheck?: boolean;
}

/**
 * One message shape for every S3 failure: which storage, what was being done, and the reason in
 * words a user can act on. Environment problems (no credentials, bucket missing, access denied,
 * server unreachable) become UserErrors: shown as one line, no stack.
 */
export function describeS3Error(err: unknown, ctx: ErrorContext): Error {
  if (err instanceof UserError) return err;
  const name = s3ErrorName(err);
  const status = httpStatus(err);
  const user = (reason: string): UserError => new UserError(`${ctx.where}: ${reason} (while ${ctx.doing})`);

  if (name === 'CredentialsProviderError') {
    return user(
      'no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, ' +
        'or use another source of the standard AWS credential chain (~/.aws/credentials, SSO, instance role)',
    );
  }
  if (name === 'NoSuchBucket') return user(`bucket "${ctx.bucket}" does not exist at ${ctx.server}`);
  if (name === 'InvalidAccessKeyId') return user(`the access key id is not known to ${ctx.server} (check AWS_ACCESS_KEY_ID or the AWS profile)`);
  if (name === 'SignatureDoesNotMatch') return user(`the secret access key was refused by ${ctx.server} (check AWS_SECRET_ACCESS_KEY or the AWS profile)`);
  if (name === 'ExpiredToken' || name === 'TokenRefreshRequired' || name === 'InvalidToken') {
    return user(`the AWS credentials (session token) have expired or are invalid`);
  }
  if (name === 'AccessDenied' || name === 'AllAccessDisabled' || (status === 403 && (name === undefined || name === 'Forbidden' || name === 'UnknownError'))) {
    return user(`access denied to bucket "${ctx.bucket}" at ${ctx.server}: the credentials lack a permission`);
  }
  if (name === 'PermanentRedirect' || name === 'AuthorizationHeaderMalformed' || name === 'IllegalLocationConstraintException' || status === 301) {
    return user(`bucket "${ctx.bucket}" is in another region than the one configured: set \`region\` on the storage`);
  }
  const net = networkCode(err);
  if (net) {
    const reason = NETWORK_REASONS[net] ?? `network error ${net}`;
    return user(`cannot reach ${ctx.server}: ${reason}`);
  }
  if (name === 'TimeoutError') return user(`cannot reach ${ctx.server}: ${errorMessage(err)}`);
  if (status === 404 && ctx.bucketCheck) {
    return user(`bucket "${ctx.bucket}" does not exist at ${ctx.server}`);
  }
  const code = name && name !== 'Error' ? ` ${name}` : '';
  const http = status ? ` (HTTP ${status})` : '';
  return new Error(`${ctx.where}: error while ${ctx.doing}:${code}${http} ${errorMessage(err)}`, { cause: err });
}
