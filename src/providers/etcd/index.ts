import { createReadStream } from 'node:fs';
import { readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import type { Provider, RestoreOptions } from '../types.js';
import type { Target } from '../../policy/types.js';
import { UserError } from '../../core/diagnostics.js';
import { connectionArgs, etcdSettings } from './settings.js';
import { DIAL_TIMEOUT, SNAPSHOT_TIMEOUT, etcdctl, etcdctlVersion, firstReachable, keyCount, snapshotStatus } from './etcdctl.js';
import { stageStream, stagingDir } from './stage.js';

/** The target's single unit: the whole keyspace, as one v3 snapshot. */
export const SNAPSHOT_UNIT = 'snapshot';

/**
 * Options a restore may carry beyond `--to` (the new data dir): the restored member's name and
 * URLs. Absent, the defaults below make a one-member cluster on this host's loopback.
 */
export interface EtcdRestoreOptions extends RestoreOptions {
  name?: string;
  peerUrl?: string;
  clientUrl?: string;
}

export const DEFAULT_MEMBER_NAME = 'restored';
export const DEFAULT_PEER_URL = 'http://127.0.0.1:2380';
export const DEFAULT_CLIENT_URL = 'http://127.0.0.1:2379';

function dataDirOf(target: Target, opts: RestoreOptions): string {
  if (!opts.to) throw new UserError(`target ${target.name}: etcd restores into a new data directory: give --to-dir DIR`);
  return path.resolve(opts.to);
}

async function entries(dir: string): Promise<string[] | undefined> {
  try {
    if (!(await stat(dir)).isDirectory()) return ['(not a directory)'];
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:=@,+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * etcd (DESIGN §6): one unit, `snapshot`, a v3 snapshot (`.db`, a bbolt file with etcd's
 * trailing sha256) taken with `etcdctl snapshot save`; `etcdctl snapshot status` to verify;
 * `etcdctl snapshot restore` into a NEW data directory, never over a running member.
 */
export const etcdProvider: Provider = {
  engine: 'etcd',

  async discoverUnits(target) {
    etcdSettings(target);
    return [SNAPSHOT_UNIT];
  },

  async backup(target, unit, _ctx) {
    if (unit !== SNAPSHOT_UNIT) throw new UserError(`target ${target.name}: etcd has one unit, "${SNAPSHOT_UNIT}" (not "${unit}")`);
    const s = etcdSettings(target);
    const etcdctlVer = await etcdctlVersion(`target ${target.name}`);
    // Preflight: an unreachable endpoint, bad TLS files or bad credentials fail here, clearly,
    // before anything is written to storage.
    const status = await firstReachable(s, target.name);
    // Staged, not streamed: etcd 3.4's `etcdctl snapshot save` only writes to a file path (it
    // writes FILE.part, checks it, then renames), never to stdout. So the snapshot goes to a
    // private temp folder first and is then streamed from there into storage (through sha256);
    // the folder is removed when that stream ends or fails.
    const st = await stagingDir('bkp-etcd-snap-');
    try {
      await etcdctl(
        [...connectionArgs(s, status.endpoint), `--dial-timeout=${DIAL_TIMEOUT}`, `--command-timeout=${SNAPSHOT_TIMEOUT}`, 'snapshot', 'save', st.file],
        s,
        `target ${target.name}: etcdctl snapshot save from ${status.endpoint}`,
        3_600_000 + 60_000,
      );
      // The snapshot's own revision (writes may land between the preflight and the snapshot),
      // and the number of user keys at exactly that revision.
      const snap = await snapshotStatus(st.file, `target ${target.name}: etcdctl snapshot status`);
      const keys = await keyCount(s, status.endpoint, snap.revision, target.name).catch(() => keyCount(s, status.endpoint, undefined, target.name));
      const facts = {
        etcd_version: status.version,
        cluster_id: status.clusterId,
        revision: snap.revision,
        key_count: keys,
        db_size: snap.totalSize,
        snapshot_hash: snap.hash,
        endpoint: status.endpoint,
        etcdctl_version: etcdctlVer,
      };
      const stream = createReadStream(st.file);
      const done = finished(stream).then(
        async () => {
          await st.remove();
          return facts;
        },
        async (err: unknown) => {
          await st.remove();
          throw err;
        },
      );
      done.catch(() => undefined);
      return { stream, ext: 'db', compression: 'none' as const, done };
    } catch (err) {
      await st.remove();
      throw err;
    }
  },

  async restoreTarget(target, _unit, opts) {
    const dir = dataDirOf(target, opts);
    const list = await entries(dir);
    // A fresh data dir is nothing etcd can back up: no safety backup. With --force, restore
    // moves what is there aside (see restore), it never deletes it.
    return { destination: `new etcd data directory ${dir}`, hasData: list !== undefined && list.length > 0 };
  },

  async restore(target, _unit, artifact, manifest, opts, ctx) {
    const o = opts as EtcdRestoreOptions;
    const dir = dataDirOf(target, o);
    const name = o.name ?? DEFAULT_MEMBER_NAME;
    const peer = o.peerUrl ?? DEFAULT_PEER_URL;
    const client = o.clientUrl ?? DEFAULT_CLIENT_URL;
    const existing = await entries(dir);
    if (existing && existing.length > 0 && !o.force) throw new UserError(`${dir} is not empty: etcd restores into a new data directory (or use --force to move it aside)`);

    // `snapshot restore` takes a file and refuses an existing --data-dir: restore next to DIR,
    // then move it into place.
    const st = await stageStream(artifact, 'bkp-etcd-restore-');
    const building = path.join(path.dirname(dir), `.${path.basename(dir)}.bkp-restore-${process.pid}`);
    const details: string[] = [];
    try {
      await rm(building, { recursive: true, force: true });
      await etcdctl(
        ['snapshot', 'restore', st.file, `--data-dir=${building}`, `--name=${name}`, `--initial-cluster=${name}=${peer}`, `--initial-advertise-peer-urls=${peer}`],
        undefined,
        `target ${target.name}: etcdctl snapshot restore into ${dir}`,
        3_600_000,
      );
      if (existing && existing.length > 0) {
        const aside = `${dir}.replaced-${new Date().toISOString().replace(/[:.]/g, '-')}`;
        await rename(dir, aside);
        details.push(`the previous contents of ${dir} were moved to ${aside}`);
      } else if (existing) {
        await rm(dir, { recursive: true, force: true }); // an empty folder
      }
      await rename(building, dir);
    } catch (err) {
      await rm(building, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    } finally {
      await st.remove();
    }
    const snap = manifest.facts;
    const rev = typeof snap.revision === 'number' ? `revision ${snap.revision}` : 'the snapshot';
    const keys = typeof snap.key_count === 'number' ? `, ${snap.key_count} keys` : '';
    const cmd = ['etcd', `--name=${name}`, `--data-dir=${dir}`, `--listen-client-urls=${client}`, `--advertise-client-urls=${client}`, `--listen-peer-urls=${peer}`, `--initial-advertise-peer-urls=${peer}`, `--initial-cluster=${name}=${peer}`];
    ctx.log(`etcd snapshot restored into ${dir}`);
    return {
      destination: `new etcd data directory ${dir}`,
      details: [
        `member "${name}" of a new one-member cluster, ${rev}${keys}`,
        ...details,
        'start a member on it (a new instance: never over a running one):',
        `  ${cmd.map(shellWord).join(' ')}`,
        'then point clients at it, and add members with `etcdctl member add` as the cluster needs',
      ],
    };
  },

  async verifyDeep(_target, artifact, manifest) {
    const st = await stageStream(artifact, 'bkp-etcd-verify-');
    try {
      const snap = await snapshotStatus(st.file, `etcdctl snapshot status of backup ${manifest.id}`);
      const recorded = manifest.facts.revision;
      if (typeof recorded === 'number' && recorded !== snap.revision) {
        throw new UserError(`backup ${manifest.id}: the snapshot is at revision ${snap.revision}, the manifest recorded ${recorded}`);
      }
      return [`etcd snapshot: revision ${snap.revision}, ${snap.totalKey} keys, hash ${snap.hash}`];
    } finally {
      await st.remove();
    }
  },
};
