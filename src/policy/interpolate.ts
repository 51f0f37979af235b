import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Diagnostic } from '../core/diagnostics.js';
import { registerSecret } from '../core/secrets.js';
import type { YamlSource } from './read-yaml.js';
import { atPath, formatPath, isRecord } from './tree.js';
import type { FieldPath } from './tree.js';

export interface InterpolateOptions {
  env: Record<string, string | undefined>;
  /** Folder `${file:…}` paths are relative to: the policy file's folder. */
  baseDir: string;
  source: YamlSource;
}

export interface InterpolateResult {
  /** A copy of the input with every `${env:…}` / `${file:…}` replaced; a reference that failed stays as written. */
  value: unknown;
  diagnostics: Diagnostic[];
  /** Formatted paths of fields whose interpolation failed: later checks stay quiet about them. */
  failed: Set<string>;
}

// `$${` is a literal `${`; only the env: and file: forms are ours, so a shell `${HOME}` in a hook passes through.
const TOKEN = /\$\$\{|\$\{(env|file):/g;

/**
 * Replaces `${env:NAME}` and `${file:PATH}` anywhere inside string scalars, registering each value as a
 * secret. Keys are never interpolated. The input is not modified: the caller keeps the as-written form.
 */
export function interpolate(value: unknown, opts: InterpolateOptions): InterpolateResult {
  const diagnostics: Diagnostic[] = [];
  const failed = new Set<string>();
  const visit = (v: unknown, at: FieldPath): unknown => {
    if (typeof v === 'string') return interpolateString(v, at, opts, (d) => {
      diagnostics.push(d);
      failed.add(formatPath(at));
    });
    if (Array.isArray(v)) return v.map((item, i) => visit(item, [...at, i]));
    if (isRecord(v)) return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, visit(item, [...at, k])]));
    return v;
  };
  return { value: visit(value, []), diagnostics, failed };
}

/**
 * Every interpolated value is a secret (printed as `***`) except variables whose names say they
 * hold a place, not a credential: `BACKUP_DIR`, `BRAINWAVE_VOLUMES`, `PG_HOST`… Masking those
 * would turn every path in a message into `***`. A name that also says secret (`KEY_FILE`,
 * `TOKEN_PATH`) stays masked, and `${file:…}` contents always are.
 */
const PLAIN_NAME = /(^|_)(DIR|DIRS|PATH|PATHS|FOLDER|VOLUMES?|HOST|HOSTNAME|PORT|USER|USERNAME|BUCKET|REGION|ENDPOINTS?|PREFIX|NAMESPACE|ZONE|TZ)$/;
const SECRET_WORD = /(PASS|SECRET|TOKEN|KEY|CRED|AUTH|SESSION|COOKIE|PRIVATE|URL|URI|DSN)/;
export function isPlainSetting(envName: string): boolean {
  const name = envName.toUpperCase();
  return PLAIN_NAME.test(name) && !SECRET_WORD.test(name);
}

function interpolateString(s: string, at: FieldPath, opts: InterpolateOptions, report: (d: Diagnostic) => void): string {
  if (!s.includes('${')) return s;
  let out = '';
  let last = 0;
  TOKEN.lastIndex = 0;
  for (let m = TOKEN.exec(s); m; m = TOKEN.exec(s)) {
    out += s.slice(last, m.index);
    if (m[0] === '$${') {
      out += '${';
      last = TOKEN.lastIndex;
      continue;
    }
    const kind = m[1] as 'env' | 'file';
    const close = s.indexOf('}', TOKEN.lastIndex);
    if (close < 0) {
      report(error(at, opts, s.slice(m.index), `unterminated \${${kind}:…}: missing "}"`));
      return s;
    }
    const written = s.slice(m.index, close + 1);
    const arg = s.slice(TOKEN.lastIndex, close);
    const resolved = resolve(kind, arg, opts);
    if (typeof resolved !== 'string') {
      report(error(at, opts, written, resolved.problem));
      out += written;
    } else {
      if (kind === 'file') registerSecret(resolved);
      else if (!isPlainSetting(arg)) registerSecretsOf(resolved);
      out += resolved;
    }
    last = close + 1;
    TOKEN.lastIndex = last;
  }
  return out + s.slice(last);
}

/**
 * A server URL (`https://user:pw@host:port`, nothing after the host: no path, query or fragment,
 * where webhooks and DSNs carry tokens) keeps its host visible, because a plan that says which
 * server a replication reads is what a reviewer needs: only its user and password are registered.
 * Any other value is masked whole.
 */
function registerSecretsOf(value: string): void {
  if (/^[a-z][a-z0-9+.-]*:\/\/[^/?#\s]+\/?$/i.test(value)) {
    try {
      const u = new URL(value);
      // The password; or a user alone, which may be a token (`https://TOKEN@host`). A user
      // name beside a password is no secret, and masking "admin" everywhere would garble output.
      const secret = u.password || u.username;
      if (secret) {
        registerSecret(secret);
        registerSecret(decodeURIComponent(secret));
      }
      return;
    } catch {
      // not a URL after all: masked whole below
    }
  }
  registerSecret(value);
}

function resolve(kind: 'env' | 'file', arg: string, opts: InterpolateOptions): string | { problem: string } {
  const name = arg.trim();
  if (name === '') return { problem: `empty ${kind === 'env' ? 'variable name' : 'file path'} in \${${kind}:}` };
  if (kind === 'env') {
    const v = opts.env[name];
    return v === undefined ? { problem: `environment variable "${name}" is not set` } : v;
  }
  try {
    // Secret files usually end with a newline that is not part of the secret (echo, editors, k8s secrets).
    return readFileSync(path.resolve(opts.baseDir, name), 'utf8').replace(/[\r\n]+$/, '');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    return { problem: `cannot read file "${name}": ${why}` };
  }
}

function error(at: FieldPath, opts: InterpolateOptions, written: string, problem: string): Diagnostic {
  return {
    severity: 'error',
    code: 'policy.interpolation',
    summary: atPath(at, problem),
    location: opts.source.locateText(at, written),
    path: formatPath(at),
  };
}
