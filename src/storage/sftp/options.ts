import { userInfo } from 'node:os';
import { UserError } from '../../core/diagnostics.js';

/**
 * The fields of an sftp storage in the policy (`schemas/policy.schema.json`, `storage_sftp`), after
 * interpolation. Local file paths (`private_key_file`, `known_hosts_file`) arrive resolved against
 * the policy's folder; `path` is a path on the server and is never resolved locally.
 */
export interface SftpOptions {
  host: string;
  /** Default 22. */
  port?: number;
  /** Default: the current OS user, as ssh does. */
  user?: string;
  /** Storage root on the server. Absolute, or relative to the login folder (as sftp takes it). */
  path: string;
  /** Private key (OpenSSH or PEM, without a passphrase). Without it, the ssh-agent (`SSH_AUTH_SOCK`). */
  private_key_file?: string;
  /**
   * known_hosts file to check the server's key against (plain, `[host]:port`, hashed `|1|`
   * entries). When neither this nor `host_key` is set: `~/.ssh/known_hosts` and
   * `/etc/ssh/ssh_known_hosts`, as ssh does.
   */
  known_hosts_file?: string;
  /** Expected host key fingerprint, `SHA256:…` as `ssh-keygen -lf` prints it. Takes precedence over known_hosts. */
  host_key?: string;
  /** Accepts any host key. For tests only: `bkp validate` warns about it. */
  insecure_skip_host_key_check?: boolean;
}

/** Knobs that are not policy fields (tests use short timeouts). */
export interface SftpTuning {
  /** Bound on TCP connect + SSH handshake + authentication. Default 20 s. */
  connectTimeoutMs?: number;
  /** SSH keepalive interval; a link that stays silent for 3 of them is declared lost. Default 10 s. */
  keepaliveIntervalMs?: number;
}

const KNOWN_FIELDS = new Set(['host', 'port', 'user', 'path', 'private_key_file', 'known_hosts_file', 'host_key', 'insecure_skip_host_key_check']);

/**
 * Reads the `options` of an `OtherStorageConfig` of type sftp into `SftpOptions`. The schema has
 * checked them already; this guards the types for code that builds options by hand.
 */
export function parseSftpOptions(storageName: string, raw: Record<string, unknown>): SftpOptions {
  const fail = (msg: string): never => {
    throw new UserError(`storage "${storageName}": ${msg}`);
  };
  const str = (field: string, required = false): string | undefined => {
    const v = raw[field];
    if (v === undefined || v === null) return required ? fail(`sftp storage needs "${field}"`) : undefined;
    if (typeof v !== 'string' || v === '') return fail(`"${field}" must be a non-empty string`);
    return v;
  };
  for (const k of Object.keys(raw)) {
    // `type`, `name` and the fields every storage has (encryption, compression, retention) are not ours.
    if (!KNOWN_FIELDS.has(k) && !['type', 'name', 'encryption', 'compression', 'retention'].includes(k)) fail(`unknown sftp field "${k}"`);
  }
  const port = raw.port;
  if (port !== undefined && (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)) fail('"port" must be an integer from 1 to 65535');
  const insecure = raw.insecure_skip_host_key_check;
  if (insecure !== undefined && typeof insecure !== 'boolean') fail('"insecure_skip_host_key_check" must be true or false');
  const hostKey = str('host_key');
  if (hostKey !== undefined && !/^SHA256:[A-Za-z0-9+/]+=*$/.test(hostKey)) fail(`"host_key" must be a fingerprint like SHA256:… (as ssh-keygen -lf prints it), not ${JSON.stringify(hostKey)}`);
  const opts: SftpOptions = { host: str('host', true) as string, path: str('path', true) as string };
  if (port !== undefined) opts.port = port as number;
  const user = str('user');
  if (user !== undefined) opts.user = user;
  const key = str('private_key_file');
  if (key !== undefined) opts.private_key_file = key;
  const knownHosts = str('known_hosts_file');
  if (knownHosts !== undefined) opts.known_hosts_file = knownHosts;
  if (hostKey !== undefined) opts.host_key = hostKey;
  if (insecure !== undefined) opts.insecure_skip_host_key_check = insecure as boolean;
  return opts;
}

/** Warnings for `bkp validate` (policy path `storage.NAME.FIELD`, message). */
export function sftpOptionWarnings(storageName: string, opts: SftpOptions): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  if (opts.insecure_skip_host_key_check) {
    out.push({
      path: `storage.${storageName}.insecure_skip_host_key_check`,
      message: `storage "${storageName}": insecure_skip_host_key_check accepts any host key, so a man in the middle can read and alter backups; set host_key (SHA256:…) or known_hosts_file instead`,
    });
  }
  if (opts.host_key && opts.known_hosts_file) {
    out.push({ path: `storage.${storageName}.known_hosts_file`, message: `storage "${storageName}": host_key is set, so known_hosts_file is not used` });
  }
  return out;
}

export function defaultUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? process.env.LOGNAME ?? 'root';
  }
}
