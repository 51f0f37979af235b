import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { UserError } from '../core/diagnostics.js';
import { redact } from '../core/secrets.js';
import { bkpVersion } from './version.js';

/**
 * The command line (DESIGN §2). Thin: each command lives in ./commands and is imported only when
 * it runs, so `bkp --version` stays fast. Exit codes are decided here, in one place:
 * 0 success, 1 error, 2 success with changes under --detailed-exitcode.
 */
type Handler = () => Promise<number>;
let pending: Handler | undefined;
const run = (h: Handler) => {
  pending = h;
};

const config = (y: Argv) =>
  y.option('config', { alias: 'c', type: 'string', default: 'bkp.yaml', describe: 'policy file' }).option('now', { type: 'string', describe: 'fix the clock (ISO-8601), also BKP_NOW' });

async function main(argv: string[]): Promise<number> {
  const parser = yargs(argv)
    .scriptName('bkp')
    .version(bkpVersion())
    .strict()
    .recommendCommands()
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .command(
      'validate',
      'check the policy file',
      (y) => config(y).option('format', { choices: ['text', 'json', 'github'] as const, default: 'text' as const }),
      (a) => run(async () => (await import('./commands/validate.js')).validateCommand({ config: a.config, format: a.format })),
    )
    .command(
      'plan',
      'compare the policy with what exists and print what apply would do',
      (y) =>
        config(y)
          .option('out', { type: 'string', describe: 'save the plan to this file for `bkp apply PLAN`' })
          .option('format', { choices: ['text', 'json', 'markdown'] as const, default: 'text' as const, describe: 'markdown: for a pull-request comment' })
          .option('json', { type: 'boolean', default: false, describe: 'same as --format json' })
          .option('detailed-exitcode', { type: 'boolean', default: false, describe: 'exit 2 when the plan has changes' })
          .option('target', { type: 'string', array: true, describe: 'only this target (repeatable)' })
          .option('allow-mass-prune', { type: 'boolean', default: false }),
      (a) =>
        run(async () =>
          (await import('./commands/plan.js')).planCommand({
            config: a.config,
            now: a.now,
            out: a.out,
            format: a.json ? 'json' : a.format,
            detailedExitcode: a.detailedExitcode,
            target: a.target,
            allowMassPrune: a.allowMassPrune,
          }),
        ),
    )
    .command(
      'apply [plan]',
      'apply a saved plan, or plan and apply',
      (y) =>
        config(y)
          .positional('plan', { type: 'string', describe: 'a plan saved by `bkp plan --out`' })
          .option('auto-approve', { type: 'boolean', default: false, describe: 'do not ask for confirmation' })
          .option('target', { type: 'string', array: true })
          .option('parallelism', { type: 'number', default: 1, describe: 'targets applied at once' })
          .option('json', { type: 'boolean', default: false, describe: 'one JSON object per line' })
          .option('allow-mass-prune', { type: 'boolean', default: false }),
      (a) =>
        run(async () =>
          (await import('./commands/apply.js')).applyCommand({
            plan: a.plan,
            config: a.config,
            configGiven: argv.some((x) => x === '-c' || x === '--config' || x.startsWith('--config=')),
            now: a.now,
            autoApprove: a.autoApprove,
            target: a.target,
            parallelism: a.parallelism,
            json: a.json,
            allowMassPrune: a.allowMassPrune,
          }),
        ),
    )
    .command(
      'show <plan>',
      'print a saved plan',
      (y) => y.positional('plan', { type: 'string', demandOption: true }).option('json', { type: 'boolean', default: false }),
      (a) => run(async () => (await import('./commands/show.js')).showCommand({ plan: a.plan, json: a.json })),
    )
    .command(
      'backup <target>',
      'take an on-demand backup now, whatever the schedule',
      (y) =>
        config(y)
          .positional('target', { type: 'string', demandOption: true })
          .option('unit', { type: 'string', array: true, describe: 'only this unit (repeatable)' })
          .option('json', { type: 'boolean', default: false }),
      (a) => run(async () => (await import('./commands/backup.js')).backupCommand({ config: a.config, now: a.now, target: a.target, unit: a.unit, json: a.json })),
    )
    .command(
      'list [target]',
      'the catalog: every backup and why retention keeps it',
      (y) =>
        config(y)
          .positional('target', { type: 'string' })
          .option('storage', { type: 'string' })
          .option('runs', { type: 'boolean', default: false, describe: 'show the run history instead' })
          .option('json', { type: 'boolean', default: false }),
      (a) => run(async () => (await import('./commands/list.js')).listCommand({ config: a.config, now: a.now, target: a.target, storage: a.storage, json: a.json, runs: a.runs })),
    )
    .command(
      'restore <target>',
      'restore a backup (the latest by default)',
      (y) =>
        config(y)
          .positional('target', { type: 'string', demandOption: true })
          .option('unit', { type: 'string' })
          .option('backup', { type: 'string', describe: 'ID, latest, or a DATE: the newest at or before it' })
          .option('to', { type: 'string', alias: ['to-dir', 'to-db'], describe: 'destination: a folder (files), a database name or URL (postgres, influxdb), a new data dir (etcd)' })
          .option('force', { type: 'boolean', default: false, describe: 'overwrite data (after a safety backup)' })
          .option('name', { type: 'string', describe: 'etcd: the restored member\'s name (default restored)' })
          .option('peer-url', { type: 'string', describe: 'etcd: its peer URL (default http://127.0.0.1:2380)' })
          .option('client-url', { type: 'string', describe: 'etcd: its client URL (default http://127.0.0.1:2379)' })
          .option('from-replica', { type: 'boolean', default: false, describe: 'couchdb: replicate the replica (replicate_to) back instead of loading a backup' })
          .option('indices', { type: 'string', array: true, describe: 'elasticsearch: indices of the snapshot to restore (patterns; default all)' })
          .option('rename-pattern', { type: 'string', describe: 'elasticsearch: regex on index names, e.g. (.+)' })
          .option('rename-replacement', { type: 'string', describe: 'elasticsearch: what matching names become, e.g. restored-$1' })
          .option('storage', { type: 'string' }),
      (a) =>
        run(async () =>
          (await import('./commands/restore.js')).restoreCommand({
            config: a.config,
            now: a.now,
            target: a.target,
            unit: a.unit,
            backup: a.backup,
            to: a.to,
            force: a.force,
            storage: a.storage,
            name: a.name,
            peerUrl: a.peerUrl,
            clientUrl: a.clientUrl,
            fromReplica: a.fromReplica,
            indices: a.indices?.flatMap((i) => String(i).split(',')).filter(Boolean),
            renamePattern: a.renamePattern,
            renameReplacement: a.renameReplacement,
          }),
        ),
    )
    .command(
      'verify [target]',
      'read backups back and check their checksums',
      (y) =>
        config(y)
          .positional('target', { type: 'string' })
          .option('deep', { type: 'boolean', default: false, describe: 'also check the archive format' })
          .option('storage', { type: 'string' })
          .option('json', { type: 'boolean', default: false }),
      (a) => run(async () => (await import('./commands/verify.js')).verifyCommand({ config: a.config, target: a.target, storage: a.storage, deep: a.deep, json: a.json })),
    )
    .command('retention', 'retention tools', (y) =>
      y
        .command('test', 'apply retention to JSON snapshots on stdin', {}, () => run(async () => (await import('./commands/retention-test.js')).retentionTestCommand()))
        .demandCommand(1, 'bkp retention: give a subcommand (test)'),
    )
    .command(
      'diff [old] [new]',
      'what a policy change does: changed fields, and how many existing backups it would prune',
      (y) =>
        config(y)
          .positional('old', { type: 'string', describe: 'the policy before (or use --base-ref)' })
          .positional('new', { type: 'string', describe: 'the policy after (default: -c)' })
          .option('base-ref', { type: 'string', describe: 'read the old policy from this git ref (the -c file at that ref)' })
          .option('format', { choices: ['text', 'markdown', 'json'] as const, default: 'text' as const })
          .option('detailed-exitcode', { type: 'boolean', default: false, describe: 'exit 2 when existing backups would be pruned' })
          .option('impact', { type: 'boolean', default: true, describe: 'read the catalog to count backups the change would prune (--no-impact skips it)' }),
      (a) =>
        run(async () =>
          (await import('./commands/diff.js')).diffCommand({
            old: a.old,
            new: a.new,
            config: a.config,
            baseRef: a.baseRef,
            format: a.format,
            now: a.now,
            detailedExitcode: a.detailedExitcode,
            impact: a.impact,
          }),
        ),
    )
    .command(
      'export <format>',
      'the schedules for another scheduler: crontab lines, or Kubernetes CronJobs',
      (y) =>
        config(y)
          .positional('format', { choices: ['crontab', 'k8s'] as const, demandOption: true })
          .option('image', { type: 'string', describe: 'k8s: the bkp container image' })
          .option('namespace', { type: 'string', describe: 'k8s: namespace (default: default)' })
          .option('config-map', { type: 'string', describe: 'k8s: ConfigMap holding the policy (default: bkp-policy)' })
          .option('secret', { type: 'string', describe: 'k8s: Secret holding the variables (default: bkp-secrets)' })
          .option('workdir', { type: 'string', describe: 'crontab: folder the lines cd into (default: the policy file\'s)' }),
      (a) =>
        run(async () => {
          const { exportCommand, exportDefaults } = await import('./commands/export.js');
          const d = exportDefaults();
          return exportCommand({
            config: a.config,
            format: a.format,
            image: a.image ?? d.image,
            namespace: a.namespace ?? d.namespace,
            configMap: a.configMap ?? d.configMap,
            secret: a.secret ?? d.secret,
            workdir: a.workdir,
          });
        }),
    )
    .command(
      'unlock <id>',
      'remove a stale lock',
      (y) => config(y).positional('id', { type: 'string', demandOption: true }),
      (a) => run(async () => (await import('./commands/unlock.js')).unlockCommand({ config: a.config, id: a.id })),
    )
    .demandCommand(1, 'give a command: bkp --help lists them')
    .fail((msg, err) => {
      throw err ?? new UserError(msg);
    })
    .help();

  await parser.parseAsync();
  if (!pending) return 0;
  try {
    return await pending();
  } finally {
    // Remote storages hold connections open; close them so the process can exit.
    const { closeAllStorages } = await import('../storage/registry.js');
    await closeAllStorages().catch(() => undefined);
  }
}

// If the event loop empties while a command is still pending, some stream stalled: never let
// that pass for success (exit code 0 with a half-done backup).
let settled = false;
process.on('beforeExit', () => {
  if (settled) return;
  settled = true;
  process.stderr.write('bkp: internal error: the command stopped before finishing (a stream stalled); nothing after this point was done\n');
  process.exitCode = 1;
});

main(hideBin(process.argv)).then(
  (code) => {
    settled = true;
    process.exitCode = code;
  },
  (err: unknown) => {
    settled = true;
    if (err instanceof UserError) {
      process.stderr.write(`Error: ${redact(err.message)}\n`);
      process.exitCode = err.exitCode;
    } else {
      process.stderr.write(`bkp: internal error: ${redact(err instanceof Error ? (err.stack ?? err.message) : String(err))}\n`);
      process.exitCode = 1;
    }
  },
);
