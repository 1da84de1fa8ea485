/**
 * Values the server sends, for the specs that mock api.ts.
 */
import { IDataVersion, IRun, IRunDiff, IRunSummary } from '../api';

/**
 * A finished cell run of train.ipynb as the runs list serves it: `fields` override
 * the defaults (no params, metrics or tags; started 2026-01-01 10:00 UTC, 1 s).
 */
export function summaryRun(
  runId: string,
  fields: Partial<IRunSummary> = {}
): IRunSummary {
  return {
    run_id: runId,
    kind: 'cell',
    name: 'train',
    status: 'finished',
    error: null,
    started_at: '2026-01-01T10:00:00Z',
    ended_at: null,
    duration: 1,
    parent_id: null,
    rerun_of: null,
    notebook_path: 'train.ipynb',
    cell_id: 'c1',
    execution_count: 1,
    params: {},
    metrics: {},
    tags: {},
    ...fields
  };
}

/** A finished cell run as `GET runs/{id}` serves it, with nothing recorded. */
export function fullRun(runId: string, name: string | null): IRun {
  return {
    ...summaryRun(runId, { name, started_at: null, duration: null }),
    source: null,
    notebook_hash: null,
    code_matches_notebook: null,
    git_commit: null,
    git_dirty: null,
    git_diff: null,
    param_sources: {},
    data: [],
    environment: null
  };
}

function version(hash: string, size: number): IDataVersion {
  return {
    path: 'data/train.csv',
    role: 'input',
    hash,
    size,
    kind: 'file',
    in_project: true,
    cached: true,
    mtime: null
  };
}

/** Run `b` against run `a`: lr and acc moved, depth and one file did not. */
export function diff(a: string, b: string): IRunDiff {
  return {
    a,
    b,
    differs: true,
    include_same: true,
    params: [
      { key: 'lr', kind: 'changed', a: 0.1, b: 0.01, delta: -0.09 },
      { key: 'depth', kind: 'same', a: 3, b: 3 }
    ],
    metrics: [
      {
        key: 'acc',
        kind: 'changed',
        a: 0.8,
        b: 0.9,
        delta: 0.1,
        relative: 0.125
      }
    ],
    data: [
      {
        path: 'data/train.csv',
        role: 'input',
        kind: 'changed',
        a: version('md5:1', 100),
        b: version('md5:2', 120),
        size_delta: 20,
        detail: { summary: ['rows 2 → 3'] }
      },
      {
        path: 'data/labels.csv',
        role: 'input',
        kind: 'same',
        a: version('md5:3', 10),
        b: version('md5:3', 10),
        size_delta: null,
        detail: null
      }
    ],
    code: '--- a\n+++ b\n-lr = 0.1\n+lr = 0.01',
    environment: [],
    outcome: [{ key: 'status', kind: 'same', a: 'finished', b: 'finished' }],
    stats: {}
  };
}
