import cliProgress from 'cli-progress';
import type { ChalkInstance } from 'chalk';
import type { ActionOutput, ApplyEvent, ActionResult } from '../apply/events.js';
import type { Action } from '../planner/types.js';
import { isResourceAction } from '../planner/types.js';
import { resourceLabel } from './resource-fields.js';
import { formatBytes, formatDuration } from './style.js';
import { redact } from '../core/secrets.js';

function label(a: Action): string {
  if (isResourceAction(a)) return resourceLabel(a);
  switch (a.kind) {
    case 'backup':
      return `${a.target}/${a.unit}: backup`;
    case 'copy':
      return `${a.target}/${a.unit}: copy ${a.source.id ?? 'new backup'} to ${a.storage}`;
    case 'prune':
      return `${a.target}/${a.unit}: prune ${a.before.id}`;
    case 'cleanup':
      return `${a.target}: cleanup ${a.before.key}`;
    default: {
      const never: never = a;
      return never;
    }
  }
}

function describeOutput(o: ActionOutput): string {
  if (o.backup_id && !o.sha256) return ` (backup ${o.backup_id}${o.detail ? `, ${o.detail}` : ''})`;
  if (o.backup_id) return ` (backup ${o.backup_id}, ${formatBytes(o.bytes)}, sha256 ${o.sha256?.slice(0, 12)}…)`;
  if (o.deleted) return ` (deleted ${o.deleted})`;
  if (o.detail) return ` (${o.detail})`;
  return '';
}

/** Shows apply as it happens: plain lines (a progress bar for backups on a TTY), or JSON lines. */
export class ApplyReporter {
  private readonly bars = new Map<string, cliProgress.SingleBar>();
  private multi?: cliProgress.MultiBar;
  private readonly started = new Map<string, number>();

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly style: ChalkInstance,
    private readonly mode: 'text' | 'json',
    private readonly progress: boolean,
  ) {}

  private line(s: string): void {
    const text = redact(s);
    if (this.multi) this.multi.log(`${text}\n`);
    else this.out.write(`${text}\n`);
  }

  onEvent = (e: ApplyEvent): void => {
    if (this.mode === 'json') {
      this.out.write(`${redact(JSON.stringify(this.jsonEvent(e)))}\n`);
      return;
    }
    switch (e.type) {
      case 'action_started':
        this.started.set(e.action.id, Date.now());
        if (e.action.kind === 'backup' && this.progress) this.startBar(e.action);
        else this.line(`${label(e.action)}: started`);
        break;
      case 'progress': {
        const bar = this.bars.get(e.action.id);
        if (bar) bar.update(e.bytes, { bytes: formatBytes(e.bytes), rate: this.rate(e.action.id, e.bytes) });
        break;
      }
      case 'action_finished':
        this.stopBar(e.action.id);
        this.line(this.style.green(`${label(e.action)}: done in ${formatDuration(e.duration_ms)}${describeOutput(e)}`));
        break;
      case 'action_failed':
        this.stopBar(e.action.id);
        this.line(this.style.red(`${label(e.action)}: FAILED after ${formatDuration(e.duration_ms)}: ${e.error}`));
        break;
      case 'action_skipped':
        this.line(this.style.yellow(`${label(e.action)}: skipped: ${e.reason}`));
        break;
      case 'log':
        this.line(this.style.dim(`${e.target}: ${e.line}`));
        break;
      case 'warning':
        this.line(this.style.yellow(`Warning: ${e.message}`));
        break;
      default: {
        const never: never = e;
        return never;
      }
    }
  };

  private jsonEvent(e: ApplyEvent): Record<string, unknown> {
    if (e.type === 'log' || e.type === 'warning') return { ...e };
    const { action, ...rest } = e;
    return { ...rest, action: { id: action.id, kind: action.kind, op: action.op, target: action.target, unit: action.unit } };
  }

  private rate(id: string, bytes: number): string {
    const t0 = this.started.get(id) ?? Date.now();
    const s = Math.max(0.001, (Date.now() - t0) / 1000);
    return `${formatBytes(bytes / s)}/s`;
  }

  private startBar(a: Action): void {
    this.multi ??= new cliProgress.MultiBar(
      { format: '  {name}  {bytes}  {rate}', hideCursor: true, stream: this.out, clearOnComplete: true },
      cliProgress.Presets.shades_classic,
    );
    this.bars.set(a.id, this.multi.create(1, 0, { name: label(a), bytes: '0 B', rate: '' }));
  }

  private stopBar(id: string): void {
    const bar = this.bars.get(id);
    if (!bar || !this.multi) return;
    this.multi.remove(bar);
    this.bars.delete(id);
    if (this.bars.size === 0) {
      this.multi.stop();
      this.multi = undefined;
    }
  }

  /** The last line: counts by outcome. */
  finish(results: ActionResult[]): void {
    const count = (f: (r: ActionResult) => boolean) => results.filter(f).length;
    const failed = count((r) => r.status === 'failed');
    const summary = {
      created: count((r) => r.status === 'succeeded' && r.op === 'create'),
      changed: count((r) => r.status === 'succeeded' && r.op === 'update'),
      deleted: count((r) => r.status === 'succeeded' && r.op === 'delete'),
      skipped: count((r) => r.status === 'skipped'),
      failed,
    };
    if (this.mode === 'json') {
      this.out.write(`${JSON.stringify({ type: 'summary', ...summary, ok: failed === 0 })}\n`);
      return;
    }
    const text = `Apply ${failed ? 'finished with errors' : 'complete'}! Resources: ${summary.created} created, ${summary.changed} changed, ${summary.deleted} deleted${summary.skipped ? `, ${summary.skipped} skipped` : ''}${failed ? `, ${failed} failed` : ''}.`;
    this.line(failed ? this.style.red.bold(text) : this.style.green.bold(text));
  }
}
