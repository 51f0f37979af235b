import type { Action } from '../planner/types.js';

/** What apply reports while it runs; renderers turn these into text, bars or JSON lines. */
export type ApplyEvent =
  | { type: 'action_started'; action: Action }
  | { type: 'progress'; action: Action; bytes: number }
  | ({ type: 'action_finished'; action: Action; duration_ms: number } & ActionOutput)
  | { type: 'action_failed'; action: Action; error: string; duration_ms: number }
  | { type: 'action_skipped'; action: Action; reason: string }
  | { type: 'log'; target: string; line: string }
  | { type: 'warning'; message: string };

/** What a finished action produced, as data: renderers turn it into words. */
export interface ActionOutput {
  /** A new backup's id, bytes and sha256. */
  backup_id?: string;
  bytes?: number;
  sha256?: string;
  /** The storage key a prune or cleanup deleted. */
  deleted?: string;
  /** What a resource action did, in the engine's words (`completed: 120 documents written`). */
  detail?: string;
}

export type ActionStatus = 'succeeded' | 'failed' | 'skipped';

/** The outcome of one action, kept in the run record. */
export interface ActionResult extends ActionOutput {
  id: string;
  /** `hook`: an after hook that failed once the backups were done. */
  kind: Action['kind'] | 'hook';
  /** Absent for hooks. */
  op?: Action['op'];
  target: string;
  unit?: string;
  status: ActionStatus;
  error?: string;
  duration_ms: number;
}
