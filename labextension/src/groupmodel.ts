/**
 * The Runs tab's table grouped: runs under their notebook run or their sweep,
 * each group a row with the count, the params constant within it and every
 * metric summarised (min, max or the newest run's value), the children under it
 * when expanded. Pure functions: no DOM, no requests, so jest checks every rule.
 */
import { IRunSummary, ParamValue, toNumber } from './api';

/** What the table groups by: nothing, the notebook run (`parent_id`), or the sweep. */
export type GroupBy = 'none' | 'parent' | 'sweep';

/** Which figure of a group's children a metric cell of the group row shows. */
export type SummaryStat = 'min' | 'max' | 'last';

/** min / max over a group's children of one metric, and the newest child's value. */
export interface ISummary {
  min: number;
  max: number;
  last: number;
  count: number;
}

/** One group of the table. */
export interface ITableGroup {
  /** Unique among the groups: `parent:ID`, `sweep:ID`, or `parent:` / `sweep:` for the rest. */
  key: string;
  by: Exclude<GroupBy, 'none'>;
  /** The notebook run's or the sweep's id; null for runs under none. */
  id: string | null;
  /** The group's runs, in the order given (the table's sort). */
  runs: IRunSummary[];
  /** The newest start among the runs. */
  latest: string;
}

/** A row of the grouped table: a group, or one of its runs (shown when the group is expanded). */
export type GroupedRow =
  | { type: 'group'; group: ITableGroup; expanded: boolean }
  | { type: 'run'; run: IRunSummary; group: ITableGroup };

/** Summarise `metric` over `runs`: min, max and the value of the newest run; null when none has a finite value. */
export function summarise(
  runs: readonly IRunSummary[],
  metric: string
): ISummary | null {
  let min = Infinity;
  let max = -Infinity;
  let last = NaN;
  let lastStart = '';
  let count = 0;
  for (const run of runs) {
    const value = toNumber(run.metrics[metric]);
    if (!Number.isFinite(value)) {
      continue;
    }
    count += 1;
    min = Math.min(min, value);
    max = Math.max(max, value);
    const start = run.started_at ?? '';
    if (count === 1 || start >= lastStart) {
      last = value;
      lastStart = start;
    }
  }
  return count ? { min, max, last, count } : null;
}

/**
 * The value of a param shared by every run of the group that has it; undefined
 * when the runs disagree or none has it (the group row leaves the cell empty).
 */
export function constantParam(
  runs: readonly IRunSummary[],
  key: string
): ParamValue | undefined {
  let seen: string | null = null;
  let value: ParamValue | undefined;
  for (const run of runs) {
    if (!(key in run.params)) {
      continue;
    }
    const text = JSON.stringify(run.params[key]);
    if (seen === null) {
      seen = text;
      value = run.params[key];
    } else if (text !== seen) {
      return undefined;
    }
  }
  return value;
}

/**
 * Group `runs` by their notebook run or by the sweep of their notebook run
 * (`sweepOf` maps a notebook run's id to its sweep's, or null). A notebook run
 * itself (kind `notebook`, listed with "All runs") belongs to its own group.
 * Groups come in the order of their first run, so the table's sort orders them
 * too (by start: the newest group first; by a metric: the group of the best run first).
 */
export function tableGroups(
  runs: readonly IRunSummary[],
  by: Exclude<GroupBy, 'none'>,
  sweepOf: (parentId: string) => string | null = () => null
): ITableGroup[] {
  const groups = new Map<string, ITableGroup>();
  for (const run of runs) {
    const parent = run.kind === 'notebook' ? run.run_id : run.parent_id;
    const id =
      by === 'parent'
        ? parent
        : run.kind === 'notebook'
          ? (run.tags.sweep ?? sweepOf(run.run_id))
          : parent
            ? sweepOf(parent)
            : null;
    const key = `${by}:${id ?? ''}`;
    let group = groups.get(key);
    if (group === undefined) {
      group = { key, by, id: id ?? null, runs: [], latest: '' };
      groups.set(key, group);
    }
    group.runs.push(run);
    const start = run.started_at ?? '';
    if (start > group.latest) {
      group.latest = start;
    }
  }
  return [...groups.values()];
}

/** The rows the table shows: each group, then its runs when `expanded` holds its key. */
export function groupedRows(
  groups: readonly ITableGroup[],
  expanded: ReadonlySet<string>
): GroupedRow[] {
  const rows: GroupedRow[] = [];
  for (const group of groups) {
    const open = expanded.has(group.key);
    rows.push({ type: 'group', group, expanded: open });
    if (open) {
      for (const run of group.runs) {
        rows.push({ type: 'run', run, group });
      }
    }
  }
  return rows;
}

/** How a group names itself on its row: `Sweep 1a2b3c4d`, `Notebook run 0f9e8d7c`. */
export function groupTitle(group: ITableGroup): string {
  if (group.id === null) {
    return group.by === 'sweep' ? 'Not in a sweep' : 'Interactive runs';
  }
  return `${group.by === 'sweep' ? 'Sweep' : 'Notebook run'} ${group.id.slice(0, 8)}`;
}

/**
 * Summaries of a group, computed once per metric and kept (a group's runs do not
 * change once grouped); the table asks for the ones on screen only.
 */
export class GroupSummaries {
  /** The summary of `metric` over `group`'s runs. */
  metric(group: ITableGroup, metric: string): ISummary | null {
    const key = `${group.key}\u0000m\u0000${metric}`;
    if (!this._metrics.has(key)) {
      this._metrics.set(key, summarise(group.runs, metric));
    }
    return this._metrics.get(key) ?? null;
  }

  /** The value of `param` shared by the group's runs, or undefined. */
  param(group: ITableGroup, param: string): ParamValue | undefined {
    const key = `${group.key}\u0000p\u0000${param}`;
    if (!this._params.has(key)) {
      this._params.set(key, constantParam(group.runs, param));
    }
    return this._params.get(key);
  }

  private _metrics = new Map<string, ISummary | null>();
  private _params = new Map<string, ParamValue | undefined>();
}
