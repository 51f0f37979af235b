import { createHash, createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';

/**
 * Host key checking for the sftp storage, the way OpenSSH does it: a `SHA256:…` fingerprint in the
 * policy, or a known_hosts file (plain, `[host]:port`, wildcard and hashed `|1|` host patterns,
 * `@revoked` markers; `@cert-authority` lines are ignored: bkp does not check host certificates).
 */

/** `SHA256:` + unpadded base64 of the SHA-256 of the key blob, exactly as `ssh-keygen -lf` prints it. */
export function sha256Fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type written at the start of an SSH public key blob (`ssh-ed25519`, `ssh-rsa`…). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const len = blob.readUInt32BE(0);
  if (len > blob.length - 4 || len > 64) return 'unknown';
  return blob.subarray(4, 4 + len).toString('latin1');
}

/** Fingerprints compare without the optional base64 padding a user may have pasted. */
export function sameFingerprint(a: string, b: string): boolean {
  const norm = (s: string) => s.trim().replace(/=+$/, '');
  return norm(a) === norm(b);
}

export interface KnownHostEntry {
  marker?: '@revoked' | '@cert-authority';
  /** The host field as written: comma-separated patterns, or one `|1|salt|hash`. */
  hosts: string;
  keyType: string;
  key: Buffer;
  line: number;
}

/** Parses a known_hosts file's text; malformed lines are skipped, as ssh does. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority') marker = fields.shift() as KnownHostEntry['marker'];
    else if (fields[0]?.startsWith('@')) return;
    const [hosts, keyType, b64] = fields;
    if (!hosts || !keyType || !b64 || !/^[A-Za-z0-9+/]+=*$/.test(b64)) return;
    const key = Buffer.from(b64, 'base64');
    if (key.length === 0) return;
    out.push({ marker, hosts, keyType, key, line: i + 1 });
  });
  return out;
}

/** `host` for port 22, `[host]:port` otherwise: the name known_hosts stores (and hashes). */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

/** Whether an entry's host field names `host:port` (OpenSSH's match_hostname with negations). */
export function hostMatches(hostsField: string, host: string, port: number): boolean {
  const name = knownHostsName(host, port);
  if (hostsField.startsWith('|1|')) {
    const [, , salt, hash] = hostsField.split('|');
    if (!salt || !hash) return false;
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return mac === hash;
  }
  let matched = false;
  for (const raw of hostsField.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    if (pattern === '') continue;
    if (globToRegExp(pattern).test(name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

export type HostKeyVerdict =
  | { ok: true }
  | { ok: false; reason: 'unknown' | 'changed' | 'revoked' | 'mismatch'; detail: string };

/**
 * Checks a key blob against a known_hosts file. The same host with another key is `changed`
 * (OpenSSH's "REMOTE HOST IDENTIFICATION HAS CHANGED"), no line for the host is `unknown`.
 */
export function checkKnownHosts(entries: KnownHostEntry[], host: string, port: number, blob: Buffer): HostKeyVerdict {
  const forHost = entries.filter((e) => e.marker !== '@cert-authority' && hostMatches(e.hosts, host, port));
  const revoked = forHost.find((e) => e.marker === '@revoked' && e.key.equals(blob));
  if (revoked) return { ok: false, reason: 'revoked', detail: `the key is marked @revoked (line ${revoked.line})` };
  const plain = forHost.filter((e) => e.marker === undefined);
  if (plain.some((e) => e.key.equals(blob))) return { ok: true };
  if (plain.length === 0) return { ok: false, reason: 'unknown', detail: `no entry for ${knownHostsName(host, port)}` };
  const lines = plain.map((e) => `line ${e.line}: ${e.keyType} ${sha256Fingerprint(e.key)}`).join('; ');
  return { ok: false, reason: 'changed', detail: `lists other keys for ${knownHostsName(host, port)} (${lines})` };
}

/** Key types known_hosts holds for the host, to offer first in the host key negotiation (as ssh does). */
export function knownKeyTypes(entries: KnownHostEntry[], host: string, port: number): string[] {
  const types = new Set<string>();
  for (const e of entries) if (e.marker === undefined && hostMatches(e.hosts, host, port)) types.add(e.keyType);
  return [...types];
}

/** The host key algorithms that produce keys of a known_hosts key type. */
export function algorithmsForKeyType(keyType: string): string[] {
  if (keyType === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  return [keyType];
}

/** Reads a known_hosts file; a missing file is an empty one (every host is then unknown). */
export async function readKnownHosts(file: string): Promise<{ entries: KnownHostEntry[]; missing: boolean }> {
  try {
    return { entries: parseKnownHosts(await readFile(file, 'utf8')), missing: false };
  } catch (err) {
    if (err && typeof err === 'object' && 'code' in err && err.code === 'ENOENT') return { entries: [], missing: true };
    throw err;
  }
}
