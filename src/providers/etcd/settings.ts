import path from 'node:path';
import type { Target } from '../../policy/types.js';
import { UserError } from '../../core/diagnostics.js';

/** An etcd target's settings, typed; file paths resolved against the policy file's folder. */
export interface EtcdSettings {
  endpoints: string[];
  tls?: { caFile?: string; certFile?: string; keyFile?: string; insecureSkipVerify: boolean };
  auth?: { username: string; password: string };
}

interface RawSettings {
  endpoints?: unknown;
  tls?: { ca_file?: string; cert_file?: string; key_file?: string; insecure_skip_verify?: boolean };
  auth?: { username?: string; password?: string };
}

export function etcdSettings(target: Pick<Target, 'name' | 'baseDir' | 'settings'>): EtcdSettings {
  const s = target.settings as RawSettings;
  // One entry may list several URLs separated by commas, as etcdctl's --endpoints does, so that
  // `endpoints: ["${env:ETCD_ENDPOINTS}"]` takes a whole cluster from one variable.
  const endpoints = (Array.isArray(s.endpoints) ? s.endpoints : [])
    .filter((e): e is string => typeof e === 'string')
    .flatMap((e) => e.split(','))
    .map((e) => e.trim())
    .filter((e) => e.length > 0);
  if (endpoints.length === 0) throw new UserError(`target ${target.name}: endpoints must list at least one etcd client URL, e.g. ["http://127.0.0.1:2379"]`);
  const file = (f: string | undefined) => (f ? path.resolve(target.baseDir, f) : undefined);
  return {
    endpoints,
    tls: s.tls
      ? { caFile: file(s.tls.ca_file), certFile: file(s.tls.cert_file), keyFile: file(s.tls.key_file), insecureSkipVerify: s.tls.insecure_skip_verify === true }
      : undefined,
    auth: s.auth?.username !== undefined ? { username: s.auth.username, password: s.auth.password ?? '' } : undefined,
  };
}

/** Connection flags for one endpoint (never the password: see `etcdctlEnv`). */
export function connectionArgs(s: EtcdSettings, endpoint: string): string[] {
  const args = [`--endpoints=${endpoint}`];
  if (s.tls?.caFile) args.push(`--cacert=${s.tls.caFile}`);
  if (s.tls?.certFile) args.push(`--cert=${s.tls.certFile}`);
  if (s.tls?.keyFile) args.push(`--key=${s.tls.keyFile}`);
  if (s.tls?.insecureSkipVerify) args.push('--insecure-skip-tls-verify');
  return args;
}

/**
 * The environment for etcdctl: API v3, and the user and password as ETCDCTL_USER /
 * ETCDCTL_PASSWORD (etcdctl 3.4 reads every flag from ETCDCTL_<FLAG>), so the password never
 * appears on a command line (`ps`) nor in any output. The caller's own ETCDCTL_* are dropped:
 * etcdctl refuses a flag given both ways, and they must not leak into another target.
 */
export function etcdctlEnv(s: EtcdSettings | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCDCTL_')) env[k] = v;
  env.ETCDCTL_API = '3';
  if (s?.auth) {
    env.ETCDCTL_USER = s.auth.username;
    env.ETCDCTL_PASSWORD = s.auth.password;
  }
  return env;
}
