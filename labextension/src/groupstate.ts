/**
 * The Runs tab's table grouped by notebook run or sweep: every run of the
 * table's query (fetched in large pages, once per query or store change), the
 * groups made of them (groupmodel.ts), which groups are open, and the flat list
 * of rows the virtual table draws. Every request goes through api.ts.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { IRunSummary, fetchRuns } from './api';
import {
  GroupBy,
  GroupSummaries,
  GroupedRow,
  ITableGroup,
  SummaryStat,
  groupedRows,
  tableGroups
} from './groupmodel';
import { RunsModel, messageOf } from './model';

/** Most runs grouped (the newest of the query); the note says when more match. */
export const GROUP_LIMIT = 50_000;
/** Runs per request while loading them (the server's largest page). */
const GROUP_PAGE = 10_000;
/** Runs of the first request: small, so the first groups show within a second. */
const FIRST_PAGE = 2_000;
/** Least milliseconds between two reloads when only new runs arrived (a live sweep). */
const RELOAD_INTERVAL = 5_000;

export class RunGroupsState {
  constructor(model: RunsModel, limit = GROUP_LIMIT) {
    this.model = model;
    this.limit = limit;
    model.changed.connect(this._onModel, this);
    model.setRunSource(runId => this._find(runId));
  }

  readonly model: RunsModel;
  readonly limit: number;

  /** Emitted when the rows, the grouping or the loading state changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get by(): GroupBy {
    return this._by;
  }

  /** Whether the table shows groups (rather than the model's pages). */
  get active(): boolean {
    return this._by !== 'none';
  }

  /** The figure of the children each metric cell of a group row shows. */
  get stat(): SummaryStat {
    return this._stat;
  }

  get loading(): boolean {
    return this._loading;
  }

  /** Runs fetched so far, and how many match the query. */
  get loaded(): number {
    return this._runs.length;
  }

  get total(): number {
    return this._total;
  }

  /** More runs match than were grouped. */
  get truncated(): boolean {
    return this._total > this._runs.length && !this._loading;
  }

  get error(): string | null {
    return this._error;
  }

  get groups(): readonly ITableGroup[] {
    return this._groups;
  }

  /** Each group's summaries, computed when first shown. */
  get summaries(): GroupSummaries {
    return this._summaries;
  }

  /** Rows of the grouped table: groups and the runs of the open ones. */
  get rowCount(): number {
    return this._rows.length;
  }

  rowAt(index: number): GroupedRow | undefined {
    return this._rows[index];
  }

  isExpanded(key: string): boolean {
    return this._expanded.has(key);
  }

  /** Group by notebook run, by sweep, or not at all. */
  setBy(by: GroupBy): void {
    if (by === this._by) {
      return;
    }
    this._by = by;
    this._expanded.clear();
    if (by === 'none') {
      this._key = '';
      this._runs = [];
      this._sweeps = new Map();
      this._regroup();
      return;
    }
    this._regroup();
    void this._sync();
  }

  setStat(stat: SummaryStat): void {
    if (stat !== this._stat) {
      this._stat = stat;
      this._changed.emit();
    }
  }

  /** Open a group (its runs show under it) or close it. */
  toggle(key: string): void {
    if (!this._expanded.delete(key)) {
      this._expanded.add(key);
    }
    this._rows = groupedRows(this._groups, this._expanded);
    this._changed.emit();
  }

  dispose(): void {
    window.clearTimeout(this._timer);
    this.model.setRunSource(null);
    this.model.changed.disconnect(this._onModel, this);
    Signal.clearData(this);
  }

  private _onModel(): void {
    if (this._by !== 'none') {
      void this._sync();
    }
  }

  /** A grouped run by id (a child row's run, for the selection's views). */
  private _find(runId: string): IRunSummary | undefined {
    if (this._byId === null) {
      this._byId = new Map(this._runs.map(run => [run.run_id, run]));
    }
    return this._byId.get(runId);
  }

  /** Group again: the runs of a brush when the table is brushed, else those fetched. */
  private _regroup(): void {
    const local = this.model.localRuns;
    const runs = local ?? this._runs;
    this._byId = null;
    this._grouped = runs;
    this._groups =
      this._by === 'none'
        ? []
        : tableGroups(runs, this._by, id => this._sweeps.get(id) ?? null);
    this._summaries = new GroupSummaries();
    this._rows = groupedRows(this._groups, this._expanded);
    this._changed.emit();
  }

  /** Fetch every run of the query when the query, the store or its content moved. */
  private async _sync(): Promise<void> {
    const model = this.model;
    if (model.localRuns !== null) {
      if (model.localRuns !== this._grouped) {
        this._regroup();
      }
      return;
    }
    if (this._grouped !== this._runs) {
      // A brush was cleared: the fetched runs again.
      this._regroup();
    }
    if (model.status === null) {
      return;
    }
    const query = JSON.stringify([model.path, model.effectiveQuery, this._by]);
    const key = `${query}\n${model.status.change_token}`;
    if (key === this._key) {
      return;
    }
    if (query === this._query && !this._error) {
      // Only new runs: a live sweep must not reload every run at each poll.
      const wait = this._fetchedAt + RELOAD_INTERVAL - Date.now();
      if (wait > 0 || this._loading) {
        window.clearTimeout(this._timer);
        this._timer = window.setTimeout(
          () => void this._sync(),
          Math.max(wait, 200)
        );
        return;
      }
    }
    this._key = key;
    const sameQuery = query === this._query;
    this._query = query;
    this._loading = true;
    this._error = null;
    this._progress = 0;
    if (sameQuery) {
      // Only new runs: the old groups stay on screen while the runs reload.
      this._changed.emit();
    } else {
      this._runs = [];
      this._regroup();
    }
    try {
      if (this._by === 'sweep') {
        // First: which sweep each notebook run belongs to, so the groups are right as they grow.
        const sweeps = await this._fetchSweeps();
        if (key !== this._key) {
          return;
        }
        this._sweeps = sweeps;
      }
      const all = await this._fetchAll(key, !sameQuery);
      if (key !== this._key) {
        return;
      }
      this._runs = all.runs;
      this._total = all.total;
      this._fetchedAt = Date.now();
    } catch (error) {
      if (key === this._key) {
        this._error = messageOf(error);
        this._key = '';
      }
    } finally {
      if (key === this._key || this._key === '') {
        this._loading = false;
        this._regroup();
      }
    }
  }

  /**
   * Every run of the query, newest `limit` at most: a small first page, then large
   * ones. `progressive`: the groups grow as pages arrive (else they change once, at the end).
   */
  private async _fetchAll(
    key: string,
    progressive: boolean
  ): Promise<{ runs: IRunSummary[]; total: number }> {
    const model = this.model;
    const runs: IRunSummary[] = [];
    let total = Infinity;
    let offset = 0;
    while (offset < Math.min(total, this.limit) && key === this._key) {
      const size = offset === 0 ? FIRST_PAGE : GROUP_PAGE;
      const page = await fetchRuns(model.path, {
        ...model.effectiveQuery,
        limit: Math.min(size, this.limit - offset),
        offset
      });
      if (key !== this._key) {
        break;
      }
      total = page.total;
      offset += size;
      runs.push(...page.runs);
      this._progress = runs.length;
      this._progressTotal = total;
      if (progressive) {
        this._runs = runs.slice();
        this._total = total;
        this._regroup();
      } else {
        this._changed.emit();
      }
      if (page.runs.length === 0) {
        break;
      }
    }
    return { runs, total: total === Infinity ? 0 : total };
  }

  /** The sweep of every notebook run of the store (its `sweep` tag). */
  private async _fetchSweeps(): Promise<Map<string, string>> {
    const page = await fetchRuns(this.model.path, {
      kind: 'notebook',
      notebook: false,
      limit: GROUP_PAGE,
      offset: 0
    });
    const sweeps = new Map<string, string>();
    for (const run of page.runs) {
      if (run.tags.sweep) {
        sweeps.set(run.run_id, run.tags.sweep);
      }
    }
    return sweeps;
  }

  /** Runs fetched so far by the load in progress, of how many. */
  get progress(): [number, number] {
    return [this._progress, this._progressTotal];
  }

  private _by: GroupBy = 'none';
  private _stat: SummaryStat = 'max';
  private _key = '';
  private _query = '';
  private _fetchedAt = 0;
  private _timer = 0;
  private _loading = false;
  private _error: string | null = null;
  private _runs: IRunSummary[] = [];
  private _grouped: readonly IRunSummary[] = [];
  private _total = 0;
  private _progress = 0;
  private _progressTotal = 0;
  private _sweeps = new Map<string, string>();
  private _groups: ITableGroup[] = [];
  private _rows: GroupedRow[] = [];
  private _summaries = new GroupSummaries();
  private _expanded = new Set<string>();
  private _byId: Map<string, IRunSummary> | null = null;
  private _changed = new Signal<this, void>(this);
}
