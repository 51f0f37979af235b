import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@elastic/elasticsearch';
import { clearSecrets } from '../src/core/secrets.js';
import { createEsClient, EsRequestError, matchIndices, type EsClient } from '../src/providers/elasticsearch/client.js';
import { esSettings } from '../src/providers/elasticsearch/settings.js';
import { resolveDateMathName, quartzNext, startEs, startEsDouble, type EsServer } from './helpers/es-server.js';
import { freePort } from './helpers/postgres-server.js';

/*
 * The elasticsearch engine's client layer, driven through the real @elastic/elasticsearch client.
 * No Elasticsearch server can be installed here: the first describe block runs against a REST
 * double (test/helpers/es-server.ts) and says so in its name; the second runs the same suite
 * against a real cluster when BKP_TEST_ES_URL is set, and is reported skipped otherwise. Tests
 * that need the double's hooks (forcing PARTIAL/FAILED, inspecting requests) skip themselves on
 * a real cluster.
 */

function clientFor(node: string, extra: Record<string, unknown> = {}): EsClient {
  const s = esSettings({ name: 'search', settings: { node, snapshot_repository: { name: 'unused' }, ...extra } });
  return createEsClient(s, 'search');
}

/** The error a promise rejects with (fails the test when it resolves). */
async function failure(p: Promise<unknown>): Promise<EsRequestError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(EsRequestError);
    return err as EsRequestError;
  }
  throw new Error('expected a rejection');
}

/** Polls until `fn` returns something truthy: a real cluster snapshots in the background. */
async function eventually<T>(fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The same checks against the double and against a real cluster. */
function clientSuite(kind: 'double' | 'real'): void {
  let es: EsServer;
  let client: EsClient;
  let p = '';
  const repo = () => `${p}repo`;
  const ix = (n: string) => `${p}${n}`;

  beforeAll(async () => {
    es = kind === 'double' ? await startEsDouble() : await startEs();
    p = es.prefix;
    client = clientFor(es.url);
    await es.seedIndex(ix('logs-a'), 5);
    await es.seedIndex(ix('logs-b'), 7);
    await es.seedIndex(ix('metrics'), 3);
  });

  afterAll(async () => {
    if (!es) return;
    if (es.real && client) {
      // Leave a shared cluster as it was: policy, snapshots, repository (the files stay in path.repo).
      await client.deleteSlmPolicy(ix('policy')).catch(() => undefined);
      const snaps = await client.listSnapshots(repo()).catch(() => []);
      for (const s of snaps) await client.deleteSnapshot(repo(), s.snapshot).catch(() => undefined);
      await client.deleteRepository(repo()).catch(() => undefined);
    }
    await client?.close();
    await es.stop();
  });

  it('reads the cluster info', async () => {
    const info = await client.info();
    expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(info.cluster_uuid).not.toBe('');
    if (es.double) expect(info.version).toBe('8.15.0');
  });

  it('registers, reads and removes a snapshot repository; a missing one is undefined', async () => {
    expect(await client.getRepository(repo())).toBeUndefined();
    await client.putRepository(repo(), 'fs', { location: es.repoLocation('main'), compress: true });
    const r = await client.getRepository(repo());
    expect(r).toMatchObject({ name: repo(), type: 'fs' });
    // Elasticsearch hands every setting back as a string: what the planner compares.
    expect(r!.settings).toMatchObject({ location: es.repoLocation('main'), compress: 'true' });
    await client.deleteRepository(repo());
    expect(await client.getRepository(repo())).toBeUndefined();
    await client.putRepository(repo(), 'fs', { location: es.repoLocation('main') });
  });

  it('names the node, the operation and repository_missing_exception for a missing repository', async () => {
    const err = await failure(client.createSnapshot(ix('nope'), 'snap-x', { include_global_state: false }, true));
    expect(err.message).toContain(`target search: Elasticsearch at ${client.displayNode}: `);
    expect(client.displayNode).not.toMatch(/:[^/*:@]+@/);
    expect(err.message).toContain(`create snapshot ${ix('nope')}/snap-x: repository_missing_exception: [${ix('nope')}] missing (HTTP 404)`);
    expect(err.message.split('\n')).toHaveLength(1);
    expect(err).toMatchObject({ status: 404, type: 'repository_missing_exception' });
    await expect(client.deleteRepository(ix('nope'))).rejects.toThrow(/repository_missing_exception/);
  });

  it('takes a snapshot and waits for it: indices, metadata, times, shards', async () => {
    const s = await client.createSnapshot(repo(), 'snap-1', { indices: [ix('logs-*')], include_global_state: false, metadata: { bkp: 'search', by: 'bkp' } }, true);
    expect(s).toBeDefined();
    expect(s!).toMatchObject({ snapshot: 'snap-1', repository: repo(), state: 'SUCCESS', include_global_state: false, metadata: { bkp: 'search', by: 'bkp' }, failures: [] });
    expect([...s!.indices].sort()).toEqual([ix('logs-a'), ix('logs-b')]);
    expect(s!.shards.failed).toBe(0);
    expect(s!.shards.successful).toBe(s!.shards.total);
    expect(s!.shards.total).toBeGreaterThanOrEqual(2);
    expect(typeof s!.start_time_in_millis).toBe('number');
    expect(s!.end_time_in_millis!).toBeGreaterThanOrEqual(s!.start_time_in_millis!);
    expect(s!.uuid).not.toBe('');
  });

  it('takes a snapshot without waiting, then lists every snapshot oldest first', async () => {
    expect(await client.createSnapshot(repo(), 'snap-2', { indices: [ix('metrics')], include_global_state: false }, false)).toBeUndefined();
    const done = await eventually(async () => {
      const s = await client.getSnapshot(repo(), 'snap-2');
      return s && s.state !== 'IN_PROGRESS' ? s : undefined;
    });
    expect(done.indices).toEqual([ix('metrics')]);
    const all = await client.listSnapshots(repo());
    expect(all.map((s) => s.snapshot)).toEqual(['snap-1', 'snap-2']);
    expect(all.every((s) => s.state === 'SUCCESS')).toBe(true);
  });

  it('a snapshot whose patterns match no index is empty, not an error', async () => {
    const s = await client.createSnapshot(repo(), 'snap-empty', { indices: [ix('nomatch-*')], include_global_state: false }, true);
    expect(s).toMatchObject({ state: 'SUCCESS', indices: [] });
    expect(s!.shards.total).toBe(0);
    await client.deleteSnapshot(repo(), 'snap-empty');
  });

  it('refuses a snapshot name that exists, with invalid_snapshot_name_exception', async () => {
    const err = await failure(client.createSnapshot(repo(), 'snap-1', { include_global_state: false }, true));
    expect(err.message).toContain(`invalid_snapshot_name_exception: [${repo()}:snap-1] Invalid snapshot name [snap-1], snapshot with the same name already exists (HTTP 400)`);
    expect(err.type).toBe('invalid_snapshot_name_exception');
  });

  it('getSnapshot is undefined for a missing snapshot; delete and restore name snapshot_missing_exception', async () => {
    expect(await client.getSnapshot(repo(), 'never-taken')).toBeUndefined();
    const del = await failure(client.deleteSnapshot(repo(), 'never-taken'));
    expect(del.message).toContain(`delete snapshot ${repo()}/never-taken: snapshot_missing_exception: [${repo()}:never-taken] is missing (HTTP 404)`);
    const res = await failure(client.restoreSnapshot(repo(), 'never-taken', {}));
    expect(res).toMatchObject({ status: 404, type: 'snapshot_missing_exception' });
    // A missing repository is an error even for getSnapshot: it is not "no such snapshot".
    await expect(client.getSnapshot(ix('nope'), 'x')).rejects.toThrow(/repository_missing_exception/);
  });

  it('refuses to restore over an open index, as Elasticsearch does', async () => {
    const err = await failure(client.restoreSnapshot(repo(), 'snap-1', { indices: [ix('logs-a')] }));
    expect(err.message).toContain(`restore snapshot ${repo()}/snap-1: snapshot_restore_exception: [${repo()}:snap-1/`);
    expect(err.message).toContain(`cannot restore index [${ix('logs-a')}] because an open index with same name already exists in the cluster`);
    expect(err.message).toContain('(HTTP 500)');
    expect(err).toMatchObject({ status: 500, type: 'snapshot_restore_exception' });
  });

  it('restores under new names with rename_pattern, and over a closed index', async () => {
    const r = await client.restoreSnapshot(repo(), 'snap-1', { indices: [ix('logs-*')], rename_pattern: `${p}logs-(.+)`, rename_replacement: `${p}restored-logs-$1`, include_global_state: false });
    expect(r).toBeDefined();
    expect([...r!.indices].sort()).toEqual([ix('restored-logs-a'), ix('restored-logs-b')]);
    expect(r!.shards.failed).toBe(0);
    expect(await client.openIndices([ix('restored-*')])).toEqual([ix('restored-logs-a'), ix('restored-logs-b')]);
    if (es.double) expect(es.double.index(ix('restored-logs-b'))).toEqual({ open: true, docs: 7 });

    await client.closeIndices([ix('logs-a')]);
    expect(await client.openIndices([ix('logs-*')])).toEqual([ix('logs-b')]);
    const back = await client.restoreSnapshot(repo(), 'snap-1', { indices: [ix('logs-a')] });
    expect(back!.indices).toEqual([ix('logs-a')]);
    expect(await client.openIndices([ix('logs-*')])).toEqual([ix('logs-a'), ix('logs-b')]);
  });

  it('openIndices follows the multi-target syntax: wildcards and exclusions', async () => {
    expect(await client.openIndices([`${ix('logs-*')},-${ix('logs-b')}`])).toEqual([ix('logs-a')]);
    expect(await client.openIndices([ix('metrics'), ix('no-such-index')])).toEqual([ix('metrics')]);
    await es.closeIndex(ix('metrics'));
    expect(await client.openIndices([ix('metrics')])).toEqual([]);
    const err = await failure(client.closeIndices([ix('no-such-index')]));
    expect(err.message).toContain(`close index ${ix('no-such-index')}: index_not_found_exception: no such index [${ix('no-such-index')}] (HTTP 404)`);
  });

  it('deletes a snapshot', async () => {
    await client.deleteSnapshot(repo(), 'snap-2');
    expect((await client.listSnapshots(repo())).map((s) => s.snapshot)).toEqual(['snap-1']);
  });

  it('puts, reads, updates, executes and deletes an SLM policy', async () => {
    const id = ix('policy');
    expect(await client.getSlmPolicy(id)).toBeUndefined();
    const body = {
      schedule: '0 30 1 * * ?',
      name: `<${p}nightly-{now/d}>`,
      repository: repo(),
      config: { indices: [ix('logs-*')], include_global_state: false, metadata: { bkp: 'search' } },
      retention: { expire_after: '7d', min_count: 1, max_count: 7 },
    };
    await client.putSlmPolicy(id, body);
    const got = await client.getSlmPolicy(id);
    expect(got).toMatchObject({ id, version: 1, policy: body });
    expect(got!.next_execution_millis!).toBeGreaterThan(Date.now());
    expect(got!.last_success).toBeUndefined();

    await client.putSlmPolicy(id, { ...body, retention: { expire_after: '14d', min_count: 2 } });
    const v2 = await client.getSlmPolicy(id);
    expect(v2!.version).toBe(2);
    expect(v2!.policy.retention).toEqual({ expire_after: '14d', min_count: 2 });

    const name = await client.executeSlmPolicy(id);
    const day = new Date().toISOString().slice(0, 10).replace(/-/g, '.');
    expect(name).toMatch(new RegExp(`^${p}nightly-${day.replace(/\./g, '\\.')}-[a-z0-9_-]+$`));
    const snap = await eventually(async () => {
      const s = await client.getSnapshot(repo(), name);
      return s && s.state !== 'IN_PROGRESS' ? s : undefined;
    });
    expect(snap.state).toBe('SUCCESS');
    // SLM adds the policy id to each snapshot's metadata: how its snapshots are told apart.
    expect(snap.metadata).toEqual({ bkp: 'search', policy: id });
    const after = await eventually(async () => {
      const g = await client.getSlmPolicy(id);
      return g?.last_success ? g : undefined;
    });
    expect(after.last_success!.snapshot_name).toBe(name);

    await client.deleteSlmPolicy(id);
    expect(await client.getSlmPolicy(id)).toBeUndefined();
    await client.deleteSnapshot(repo(), name);
  });

  it('names what SLM refuses: unknown policy, bad schedule, missing repository', async () => {
    const exec = await failure(client.executeSlmPolicy(ix('no-policy')));
    expect(exec.message).toContain(`execute SLM policy "${ix('no-policy')}": illegal_argument_exception: no such snapshot lifecycle policy [${ix('no-policy')}] (HTTP 400)`);
    const del = await failure(client.deleteSlmPolicy(ix('no-policy')));
    expect(del).toMatchObject({ status: 404, type: 'resource_not_found_exception' });

    // A Unix-style `*` in both day fields: Elasticsearch's Quartz cron wants `?` in one of them.
    const cron = await failure(client.putSlmPolicy(ix('bad'), { schedule: '0 0 23 * * *', name: 'x', repository: repo() }));
    expect(cron.message).toContain('action_request_validation_exception: Validation Failed: 1: invalid schedule: invalid cron expression [0 0 23 * * *];');
    const reserved = await failure(client.putSlmPolicy(ix('bad'), { schedule: '0 0 23 * * ?', name: 'x', repository: repo(), config: { metadata: { policy: 'mine' } } }));
    expect(reserved.message).toContain('field name [policy] is reserved');
    const norepo = await failure(client.putSlmPolicy(ix('bad'), { schedule: '0 0 23 * * ?', name: 'x', repository: ix('nope') }));
    expect(norepo.message).toContain(`illegal_argument_exception: no such repository [${ix('nope')}]`);
  });

  it('shows PARTIAL and FAILED snapshots as such, and restore refuses them', async (ctx) => {
    if (!es.double) return ctx.skip('needs the double to make a snapshot fail');
    es.double.nextSnapshot({ state: 'PARTIAL', failedIndices: [ix('logs-b')], reason: 'shard [logs-b][0] failed: disk full' });
    const partial = await client.createSnapshot(repo(), 'snap-partial', { indices: [ix('logs-*')], include_global_state: false, partial: true }, true);
    expect(partial).toMatchObject({ state: 'PARTIAL', reason: 'shard [logs-b][0] failed: disk full', shards: { total: 2, failed: 1, successful: 1 } });
    expect(partial!.failures).toEqual([expect.objectContaining({ index: ix('logs-b'), shard_id: 0, status: 'INTERNAL_SERVER_ERROR' })]);

    es.double.nextSnapshot({ state: 'FAILED', reason: 'Indices do not have primary shards [logs-a]' });
    const failed = await client.createSnapshot(repo(), 'snap-failed', { include_global_state: false }, true);
    expect(failed).toMatchObject({ state: 'FAILED', reason: 'Indices do not have primary shards [logs-a]' });
    expect(failed!.shards.successful).toBe(0);

    const states = Object.fromEntries((await client.listSnapshots(repo())).map((s) => [s.snapshot, s.state]));
    expect(states).toEqual({ 'snap-1': 'SUCCESS', 'snap-partial': 'PARTIAL', 'snap-failed': 'FAILED' });

    const r1 = await failure(client.restoreSnapshot(repo(), 'snap-failed', { rename_pattern: '(.+)', rename_replacement: 'r-$1' }));
    expect(r1.message).toContain('unsupported snapshot state [FAILED]');
    const r2 = await failure(client.restoreSnapshot(repo(), 'snap-partial', { indices: [ix('logs-b')], rename_pattern: '(.+)', rename_replacement: 'r-$1' }));
    expect(r2.message).toContain(`index [${ix('logs-b')}] wasn't fully snapshotted - cannot restore`);
    // The half that made it can be restored.
    const r3 = await client.restoreSnapshot(repo(), 'snap-partial', { indices: [ix('logs-a')], rename_pattern: '(.+)', rename_replacement: 'r-$1' });
    expect(r3!.indices).toEqual([`r-${ix('logs-a')}`]);

    es.double.setSnapshotState(repo(), 'snap-1', 'PARTIAL', 'found corrupt later');
    expect((await client.getSnapshot(repo(), 'snap-1'))!.state).toBe('PARTIAL');
    es.double.setSnapshotState(repo(), 'snap-1', 'SUCCESS');
    await client.deleteSnapshot(repo(), 'snap-partial');
    await client.deleteSnapshot(repo(), 'snap-failed');
  });

  it('a snapshot in progress: accepted without waiting, answered when done with waiting', async (ctx) => {
    if (!es.double) return ctx.skip('needs the double to hold a snapshot in progress');
    es.double.nextSnapshot({ state: 'IN_PROGRESS' });
    expect(await client.createSnapshot(repo(), 'snap-slow', { include_global_state: false }, false)).toBeUndefined();
    expect((await client.getSnapshot(repo(), 'snap-slow'))!.state).toBe('IN_PROGRESS');
    es.double.finishSnapshot(repo(), 'snap-slow');
    expect((await client.getSnapshot(repo(), 'snap-slow'))!.state).toBe('SUCCESS');

    es.double.nextSnapshot({ state: 'IN_PROGRESS' });
    let settled = false;
    const waiting = client.createSnapshot(repo(), 'snap-waited', { include_global_state: false }, true).finally(() => (settled = true));
    await eventually(async () => es.double!.snapshot(repo(), 'snap-waited'));
    await new Promise((r) => setTimeout(r, 50));
    expect(settled).toBe(false);
    es.double.finishSnapshot(repo(), 'snap-waited', 'PARTIAL');
    expect((await waiting)!.state).toBe('PARTIAL');
    await client.deleteSnapshot(repo(), 'snap-slow');
    await client.deleteSnapshot(repo(), 'snap-waited');
  });

  it('sends REST-compatibility headers for version 8 and nothing the double does not implement', async (ctx) => {
    if (!es.double) return ctx.skip('needs the double to inspect requests');
    expect(es.double.requests.length).toBeGreaterThan(10);
    for (const r of es.double.requests) {
      if (r.headers['user-agent']?.startsWith('elasticsearch-js')) expect(r.headers.accept).toBe('application/vnd.elasticsearch+json; compatible-with=8');
    }
    const create = es.double.requests.find((r) => r.method === 'PUT' && r.path === `/_snapshot/${repo()}/snap-1`);
    expect(create).toMatchObject({ query: { wait_for_completion: 'true' }, body: { indices: [ix('logs-*')], include_global_state: false, metadata: { bkp: 'search', by: 'bkp' } } });
    expect(es.double.unhandled).toEqual([]);
  });
}

describe('elasticsearch REST double (not a real cluster)', () => {
  clientSuite('double');

  it('refuses client 9.x default headers (compatible-with=9) as an 8.x cluster does', async () => {
    const es = await startEsDouble();
    try {
      const raw = new Client({ node: es.url, maxRetries: 0 });
      const err = (await raw.info().catch((e: unknown) => e)) as { meta?: { statusCode?: number; body?: { error?: { type?: string; caused_by?: { reason?: string } } } } };
      expect(err.meta?.statusCode).toBe(400);
      expect(err.meta?.body?.error?.type).toBe('media_type_header_exception');
      expect(err.meta?.body?.error?.caused_by?.reason).toBe('Accept version must be either version 8 or 7, but found 9. Accept=application/vnd.elasticsearch+json; compatible-with=9,text/plain');
      await raw.close();
      // Through client.ts the same cluster answers.
      const c = clientFor(es.url);
      expect((await c.info()).version).toBe('8.15.0');
      await c.close();
    } finally {
      await es.stop();
    }
  });

  it('401 with basic auth: security_exception and WWW-Authenticate, password masked in the message', async () => {
    const es = await startEsDouble({ auth: { username: 'elastic', password: 'right-password' } });
    try {
      const u = new URL(es.url);
      const wrong = clientFor(`http://elastic:wrong-password@${u.host}`);
      const err = await failure(wrong.info());
      expect(err.message).toBe(
        `target search: Elasticsearch at http://elastic:***@${u.host}: GET /: security_exception: unable to authenticate user [elastic] for REST request [/] (HTTP 401); check the target's auth (api_key, or username and password)`,
      );
      expect(err.message).not.toContain('wrong-password');
      expect(err).toMatchObject({ status: 401, type: 'security_exception' });
      await wrong.close();

      const none = clientFor(es.url);
      expect((await failure(none.getRepository('x'))).message).toContain('missing authentication credentials for REST request [/_snapshot/x]');
      await none.close();

      // The raw answer, as Elasticsearch writes it.
      const res = await fetch(`${es.url}/`);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Basic realm="security" charset="UTF-8", Bearer realm="security", ApiKey');
      expect(res.headers.get('x-elastic-product')).toBe('Elasticsearch');
      expect(await res.json()).toEqual({
        error: {
          root_cause: [{ type: 'security_exception', reason: 'missing authentication credentials for REST request [/]', header: { 'WWW-Authenticate': ['Basic realm="security" charset="UTF-8"', 'Bearer realm="security"', 'ApiKey'] } }],
          type: 'security_exception',
          reason: 'missing authentication credentials for REST request [/]',
          header: { 'WWW-Authenticate': ['Basic realm="security" charset="UTF-8"', 'Bearer realm="security"', 'ApiKey'] },
        },
        status: 401,
      });

      const right = clientFor(`http://elastic:right-password@${u.host}`);
      expect((await right.info()).version).toBe('8.15.0');
      await right.close();
      const viaAuth = clientFor(es.url, { auth: { username: 'elastic', password: 'right-password' } });
      expect((await viaAuth.info()).version).toBe('8.15.0');
      await viaAuth.close();
    } finally {
      await es.stop();
    }
  });

  it('401 with an API key: the key never appears in the message', async () => {
    const key = Buffer.from('key-id:key-secret-value').toString('base64');
    const es = await startEsDouble({ apiKey: key });
    try {
      const good = clientFor(es.url, { auth: { api_key: key } });
      expect((await good.info()).version).toBe('8.15.0');
      await good.close();
      const badKey = Buffer.from('other-id:not-the-secret').toString('base64');
      const bad = clientFor(es.url, { auth: { api_key: badKey } });
      const err = await failure(bad.info());
      expect(err.message).toContain('security_exception: unable to authenticate with provided credentials and anonymous access is not allowed for this request (HTTP 401)');
      expect(err.message).not.toContain(badKey);
      await bad.close();
    } finally {
      await es.stop();
      clearSecrets();
    }
  });

  it('connection refused: one line, node named, password masked', async () => {
    const port = await freePort();
    const c = clientFor(`http://elastic:pw-never-shown@127.0.0.1:${port}`);
    const err = await failure(c.listSnapshots('bkp'));
    expect(err.message).toBe(`target search: Elasticsearch at http://elastic:***@127.0.0.1:${port}: list snapshots in repository "bkp": connection refused`);
    await c.close();
    clearSecrets();
  });

  it('a server that is not Elasticsearch (no X-Elastic-Product) is named as such', async () => {
    const port = await freePort();
    const srv = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ name: 'x', cluster_name: 'x', cluster_uuid: 'x', version: { number: '8.15.0' }, tagline: 'The OpenSearch Project: https://opensearch.org/' }));
    });
    await new Promise<void>((r) => srv.listen(port, '127.0.0.1', () => r()));
    try {
      const c = clientFor(`http://127.0.0.1:${port}`);
      expect((await failure(c.info())).message).toContain('did not answer as Elasticsearch (no "X-Elastic-Product: Elasticsearch" header)');
      await c.close();
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  it('fs repositories outside path.repo are refused with the nested repository_exception', async () => {
    const es = await startEsDouble({ pathRepo: ['/data/backups'] });
    try {
      const c = clientFor(es.url);
      const err = await failure(c.putRepository('ocrvs', 'fs', { location: '/elsewhere' }));
      expect(err.message).toContain('repository_exception: [ocrvs] failed to create repository (caused by repository_exception: [ocrvs] location [/elsewhere] doesn\'t match any of the locations specified by path.repo) (HTTP 500)');
      await c.putRepository('ocrvs', 'fs', { location: '/data/backups/elasticsearch' });
      // Snapshots live in the folder: registered again, the repository shows them again.
      await es.seedIndex('ocrvs', 2);
      await c.createSnapshot('ocrvs', 'snap', { include_global_state: false }, true);
      await c.deleteRepository('ocrvs');
      await c.putRepository('ocrvs-again', 'fs', { location: 'elasticsearch' });
      expect((await c.listSnapshots('ocrvs-again')).map((s) => s.snapshot)).toEqual(['snap']);
      await c.close();
    } finally {
      await es.stop();
    }
  });

  it('resolves date math names and Quartz schedules as Elasticsearch does', () => {
    const t = Date.UTC(2026, 10, 21, 23, 30, 0);
    expect(resolveDateMathName('<nightly-{now/d}>', t)).toBe('nightly-2026.11.21');
    expect(resolveDateMathName('<snap-{now-1d/d{yyyy-MM-dd}}>', t)).toBe('snap-2026-11-20');
    expect(resolveDateMathName('<m-{now/M{yyyy.MM}}>', t)).toBe('m-2026.11');
    expect(resolveDateMathName('plain', t)).toBe('plain');
    expect(quartzNext('0 30 1 * * ?', t)).toBe(Date.UTC(2026, 10, 22, 1, 30, 0));
    // Quartz counts weekdays from Sunday = 1: `1` is Sunday 2026-11-22.
    expect(quartzNext('0 0 3 ? * 1', t)).toBe(Date.UTC(2026, 10, 22, 3, 0, 0));
    expect(quartzNext('0 0 3 ? * MON', t)).toBe(Date.UTC(2026, 10, 23, 3, 0, 0));
    expect(() => quartzNext('0 0 23 * * *', t)).toThrow(/day-of-week AND a day-of-month/);
    expect(() => quartzNext('0 23 * * *', t)).toThrow(/unexpected end of expression/);
  });
});

describe.skipIf(!process.env.BKP_TEST_ES_URL)('elasticsearch: real cluster at BKP_TEST_ES_URL', () => {
  clientSuite('real');
});

describe('elasticsearch settings', () => {
  it('takes credentials out of node, masks them, and fills defaults', () => {
    const s = esSettings({ name: 'search', settings: { node: 'https://elastic:pa55word@es.example.org:9200', snapshot_repository: { name: 'bkp' } } });
    expect(s).toEqual({
      node: 'https://es.example.org:9200/',
      displayNode: 'https://elastic:***@es.example.org:9200',
      auth: { username: 'elastic', password: 'pa55word' },
      snapshotRepository: { name: 'bkp', type: 'fs', settings: {} },
      mode: 'managed',
      indices: 'all',
      includeGlobalState: false,
      snapshotTimeoutMs: 3_600_000,
      requestTimeoutMs: 30_000,
    });
    clearSecrets();
  });

  it('reads auth, indices as list or comma string, mode and timeout', () => {
    const s = esSettings({
      name: 'search',
      settings: {
        node: 'http://es:9200',
        auth: { api_key: 'a2V5OnNlY3JldA==' },
        snapshot_repository: { name: 'ocrvs', type: 'fs', settings: { location: '/data/backups/elasticsearch', compress: true } },
        mode: 'slm',
        indices: 'ocrvs,-ocrvs-old',
        include_global_state: true,
        snapshot_timeout: '2h30m',
      },
    });
    expect(s).toMatchObject({ auth: { apiKey: 'a2V5OnNlY3JldA==' }, mode: 'slm', indices: ['ocrvs', '-ocrvs-old'], includeGlobalState: true, snapshotTimeoutMs: 9_000_000 });
    expect(esSettings({ name: 't', settings: { node: 'http://es:9200', snapshot_repository: { name: 'r' }, indices: ['a', 'b,c'] } }).indices).toEqual(['a', 'b', 'c']);
    clearSecrets();
  });

  it('refuses ambiguous or broken settings without echoing secrets', () => {
    const both = () => esSettings({ name: 'search', settings: { node: 'http://u:secret-pw@es:9200', auth: { api_key: 'k' }, snapshot_repository: { name: 'r' } } });
    expect(both).toThrow('target search: credentials are given both in node (http://u:***@es:9200) and in auth; keep one');
    expect(() => esSettings({ name: 's', settings: { node: 'http://es:9200', auth: { api_key: 'k', username: 'u', password: 'p' }, snapshot_repository: { name: 'r' } } })).toThrow(/api_key or a username and password, not both/);
    expect(() => esSettings({ name: 's', settings: { node: 'not a url with secret', snapshot_repository: { name: 'r' } } })).toThrow(/^target s: node is not a URL/);
    expect(() => esSettings({ name: 's', settings: { node: 'ftp://es', snapshot_repository: { name: 'r' } } })).toThrow(/must be an http:\/\/ or https:\/\/ URL/);
    expect(() => esSettings({ name: 's', settings: { node: 'http://es:9200', snapshot_repository: { name: 'r' }, snapshot_timeout: '2 days' } })).toThrow(/not a duration/);
    clearSecrets();
  });

  it('matchIndices: order matters, exclusions remove earlier matches', () => {
    const names = ['logs-a', 'logs-b', 'metrics', '.kibana'];
    expect(matchIndices(names, ['logs-*', '-logs-b'])).toEqual(['logs-a']);
    expect(matchIndices(names, ['_all'])).toEqual(names);
    expect(matchIndices(names, ['metrics,logs-a'])).toEqual(['metrics', 'logs-a']);
  });
});
