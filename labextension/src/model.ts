/**
 * The state of the runs panel: which store, which page of which query, what is
 * selected, which re-runs are going. Widgets only render it; all calls to the
 * server go through api.ts.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import {
  IJob,
  IRunQuery,
  IRunSummary,
  IStoreStatus,
  RunKind,
  fetchJob,
  fetchRuns,
  fetchStatus,
  startRerun
} from './api';
import { defaultColumns } from './comparemodel';

/** A column of the runs table. */
export interface IColumn {
  /** The sort key the server understands: `name`, `params.lr`, `metrics.acc` ... */
  id: string;
  label: string;
  group: 'run' | 'param' | 'metric';
  /** False for columns the server cannot sort by. */
  sortable?: boolean;
}

/** The fixed columns every table has: these lead, then the values, then {@link TAIL_COLUMNS}. */
export const BASE_COLUMNS: IColumn[] = [
  { id: 'status', label: 'Status', group: 'run' },
  { id: 'name', label: 'Name', group: 'run' }
];

/** The run columns after the params and metrics. */
export const TAIL_COLUMNS: IColumn[] = [
  { id: 'started_at', label: 'Started', group: 'run' },
  { id: 'duration', label: 'Duration', group: 'run' },
  { id: 'notebook_path', label: 'Notebook / cell', group: 'run' },
  { id: 'parent_id', label: 'Notebook run', group: 'run', sortable: false },
  { id: 'rerun_of', label: 'Re-run of', group: 'run', sortable: false }
];

/** Param and metric columns the sidebar's compact list shows. */
const COMPACT_VALUES = 2;

/** Which runs show: the active notebook's, or the whole store's. */
export type RunsScope = 'notebook' | 'store';

export namespace RunsModel {
  export interface IOptions {
    /** Rows fetched per request. */
    pageSize?: number;
    /** Milliseconds between two looks at the store's change token. */
    interval?: number;
    /** Milliseconds between two looks at a running re-run job. */
    jobInterval?: number;
  }
}

/** The runs of the store of the active notebook, page by page. */
export class RunsModel implements IDisposable {
  constructor(options: RunsModel.IOptions = {}) {
    this.pageSize = options.pageSize ?? 100;
    this._jobInterval = options.jobInterval ?? 1000;
    this._poll = new Poll({
      auto: false,
      factory: () => this.refresh(),
      frequency: {
        interval: options.interval ?? 2000,
        backoff: true,
        max: 60 * 1000
      },
      name: 'nbtrack:runs',
      // Nobody looks at a hidden panel or a hidden browser tab: no requests then.
      standby: () => !this._visible || 'when-hidden'
    });
  }

  readonly pageSize: number;

  /** Emitted whenever anything a widget shows has changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The server-relative path of the notebook whose store is shown. */
  get path(): string {
    return this._path;
  }

  /** Where the store is, and whether it exists yet. */
  get status(): IStoreStatus | null {
    return this._status;
  }

  /** The last error, as the server phrased it; null when the last request worked. */
  get error(): string | null {
    return this._error;
  }

  /** Runs matching the query (all pages), or the runs a chart's brush kept. */
  get total(): number {
    return this._local ? this._local.length : this._total;
  }

  /** Runs matching the server query, whatever a brush keeps. */
  get serverTotal(): number {
    return this._total;
  }

  /** Whether the runs of the active notebook show, or the whole store. */
  get scope(): RunsScope {
    return this._scope;
  }

  /** Whether the list is narrowed to one notebook (the scope, and a notebook in front). */
  get notebookScoped(): boolean {
    return this._scope === 'notebook' && this._path.endsWith('.ipynb');
  }

  /** The query as the server gets it (scope included), without paging. */
  get effectiveQuery(): IRunQuery {
    return { ...this._query, notebook: this.notebookScoped };
  }

  /** Whether a chart's brush narrows the table to runs held in the page. */
  get isLocallyFiltered(): boolean {
    return this._local !== null;
  }

  /** The runs a chart's brush kept (the table's rows then), or null. */
  get localRuns(): readonly IRunSummary[] | null {
    return this._local;
  }

  get paramKeys(): string[] {
    return this._paramKeys;
  }

  get metricKeys(): string[] {
    return this._metricKeys;
  }

  get query(): Readonly<IRunQuery> {
    return this._query;
  }

  /** Status and name, the chosen (or varying) params and metrics, then the run's other columns. */
  get columns(): IColumn[] {
    return [
      ...BASE_COLUMNS,
      ...this._valueColumns(this.visibleParams, this.visibleMetrics),
      ...TAIL_COLUMNS
    ];
  }

  /** The sidebar's narrow list: status, name, the first params and metrics, start, the cell link. */
  get compactColumns(): IColumn[] {
    return [
      ...BASE_COLUMNS,
      ...this._valueColumns(
        this.visibleParams.slice(0, COMPACT_VALUES),
        this.visibleMetrics.slice(0, COMPACT_VALUES)
      ),
      TAIL_COLUMNS[0],
      TAIL_COLUMNS[2]
    ];
  }

  private _valueColumns(params: string[], metrics: string[]): IColumn[] {
    return [
      ...params.map(key => ({
        id: `params.${key}`,
        label: key,
        group: 'param' as const
      })),
      ...metrics.map(key => ({
        id: `metrics.${key}`,
        label: key,
        group: 'metric' as const
      }))
    ];
  }

  /** Param columns shown: the user's choice, else those that vary among the newest runs shown. */
  get visibleParams(): string[] {
    return (
      this._chosenParams?.filter(k => this._paramKeys.includes(k)) ??
      this._defaults().params
    );
  }

  /** Metric columns shown: the user's choice, else those that vary among the newest runs shown. */
  get visibleMetrics(): string[] {
    return (
      this._chosenMetrics?.filter(k => this._metricKeys.includes(k)) ??
      this._defaults().metrics
    );
  }

  /** Selected run ids, in the order they were selected. */
  get selection(): string[] {
    return [...this._selection];
  }

  /**
   * Selected run ids, oldest first (runs not loaded keep their selection order
   * at the end): a diff reads "what changed since the earlier run".
   */
  selectionOldestFirst(): string[] {
    const startOf = (id: string): string =>
      this.findRun(id)?.started_at ?? '\uffff';
    return [...this._selection].sort((a, b) =>
      startOf(a) < startOf(b) ? -1 : startOf(a) > startOf(b) ? 1 : 0
    );
  }

  /** Re-run jobs started from this panel, by the run they re-run. */
  get jobs(): ReadonlyMap<string, IJob> {
    return this._jobs;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** Show the store of another notebook (server-relative path); no-op if the same. */
  setPath(path: string): void {
    if (path === this._path && this._status !== null) {
      return;
    }
    this._path = path;
    this._local = null;
    this._status = null;
    this._selection = [];
    this._token = null;
    this._reset();
    void this._poll.refresh();
  }

  /** Show the active notebook's runs or the whole store's. */
  setScope(scope: RunsScope): void {
    if (scope !== this._scope) {
      this._scope = scope;
      this._local = null;
      this._reset();
      void this.refresh(true).catch(() => undefined);
    }
  }

  /**
   * Narrow the table to these runs (a chart's brush), without asking the
   * server; null shows the server's pages again.
   */
  setLocalRuns(runs: IRunSummary[] | null): void {
    this._local = runs;
    this._columnDefaults = null;
    this._changed.emit();
  }

  /** Change filters, sort or kind; the list starts again from its first page. */
  setQuery(change: Partial<IRunQuery>): void {
    this._query = { ...this._query, ...change };
    this._local = null;
    this._reset();
    void this.refresh(true);
  }

  /** Sort by a column; sorting again by the same column flips the order. */
  sortBy(column: string): void {
    const descending =
      this._query.sort === column ? !this._query.descending : true;
    this.setQuery({ sort: column, descending });
  }

  setKind(kind: RunKind | 'all'): void {
    this.setQuery({ kind });
  }

  /** Choose which param and metric columns show. */
  setValueColumns(params: string[], metrics: string[]): void {
    this._chosenParams = [...params];
    this._chosenMetrics = [...metrics];
    this._changed.emit();
  }

  /** Whether the panel is on screen (polling stops while it is not). */
  setVisible(visible: boolean): void {
    this._visible = visible;
    if (visible) {
      void this._poll.refresh();
    }
  }

  /**
   * The run at a row of the table, or undefined while its page loads (the
   * page is requested).
   */
  runAt(index: number): IRunSummary | undefined {
    if (this._local) {
      return this._local[index];
    }
    const page = Math.floor(index / this.pageSize);
    const rows = this._pages.get(page);
    if (rows === undefined) {
      this._loadPage(page).catch(() => undefined);
      return undefined;
    }
    return rows[index - page * this.pageSize];
  }

  /**
   * Another holder of the runs the table shows (the grouped table fetches every run
   * of the query, not pages): `findRun` asks it last, so a run selected under a group
   * is found by the comparison views and the diff.
   */
  setRunSource(
    source: ((runId: string) => IRunSummary | undefined) | null
  ): void {
    this._runSource = source;
  }

  /** A loaded run by id (from any loaded page, or the run source). */
  findRun(runId: string): IRunSummary | undefined {
    const local = this._local?.find(r => r.run_id === runId);
    if (local) {
      return local;
    }
    for (const rows of this._pages.values()) {
      const run = rows.find(r => r.run_id === runId);
      if (run) {
        return run;
      }
    }
    return this._runSource?.(runId);
  }

  /** Tell the model which rows are on screen, so a refresh reloads those. */
  setViewport(first: number, last: number): void {
    this._viewport = [first, last];
    if (this._local) {
      return;
    }
    for (const page of this._pagesOf(first, last)) {
      if (!this._pages.has(page)) {
        this._loadPage(page).catch(() => undefined);
      }
    }
  }

  isSelected(runId: string): boolean {
    return this._selection.includes(runId);
  }

  /** Add a run to the selection or take it out. */
  toggleSelected(runId: string): void {
    this._selection = this.isSelected(runId)
      ? this._selection.filter(id => id !== runId)
      : [...this._selection, runId];
    this._changed.emit();
  }

  /** Select only this run. */
  selectOnly(runId: string): void {
    this._selection = [runId];
    this._changed.emit();
  }

  clearSelection(): void {
    this._selection = [];
    this._changed.emit();
  }

  /**
   * Look at the store: when its change token moved (or `force`), reload the
   * rows on screen. Rejects on failure, so the poll backs off.
   */
  async refresh(force = false): Promise<void> {
    const generation = this._generation;
    const path = this._path;
    try {
      const status = await fetchStatus(path);
      if (path !== this._path) {
        // Another store came in front while this one answered; the poll folded the
        // refresh it asked for into this tick, so look at the new store now.
        return this.refresh(force);
      }
      if (generation !== this._generation) {
        return;
      }
      const moved = status.change_token !== this._token;
      this._status = status;
      this._token = status.change_token;
      if (moved || force || this._pages.size === 0) {
        await this._reloadViewport();
      }
      this._setError(null);
    } catch (error) {
      this._setError(messageOf(error));
      throw error;
    }
  }

  /** Start the poll (after the panel is attached). */
  start(): void {
    void this._poll.start();
  }

  /** Re-run a run in the background; returns the job (the same one if already going). */
  async rerun(runId: string): Promise<IJob> {
    try {
      const job = await startRerun(this._path, runId);
      this._jobs.set(runId, job);
      this._setError(null);
      this._changed.emit();
      if (job.state === 'queued' || job.state === 'running') {
        this._followJob(runId, job.job_id);
      }
      return job;
    } catch (error) {
      this._setError(messageOf(error));
      throw error;
    }
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._poll.dispose();
    for (const timer of this._jobTimers) {
      clearTimeout(timer);
    }
    Signal.clearData(this);
  }

  private _followJob(runId: string, jobId: string): void {
    const timer = setTimeout(async () => {
      this._jobTimers.delete(timer);
      if (this._isDisposed) {
        return;
      }
      try {
        const job = await fetchJob(jobId);
        this._jobs.set(runId, job);
        this._changed.emit();
        if (job.state === 'queued' || job.state === 'running') {
          this._followJob(runId, jobId);
        } else {
          void this.refresh(true).catch(() => undefined);
        }
      } catch (error) {
        this._setError(messageOf(error));
      }
    }, this._jobInterval);
    this._jobTimers.add(timer);
  }

  /** Default value columns, from the first page (or the brushed runs): stable while scrolling. */
  private _defaults(): { params: string[]; metrics: string[] } {
    if (this._columnDefaults === null) {
      const runs = this._local ?? this._pages.get(0) ?? [];
      this._columnDefaults = {
        params: defaultColumns(runs, 'params', this._paramKeys),
        metrics: defaultColumns(runs, 'metrics', this._metricKeys)
      };
    }
    return this._columnDefaults;
  }

  private _reset(): void {
    this._generation += 1;
    this._columnDefaults = null;
    this._pages.clear();
    this._loading.clear();
    this._total = 0;
    this._changed.emit();
  }

  private _pagesOf(first: number, last: number): number[] {
    const pages: number[] = [];
    const from = Math.floor(Math.max(0, first) / this.pageSize);
    const to = Math.floor(Math.max(0, last) / this.pageSize);
    for (let page = from; page <= to; page++) {
      pages.push(page);
    }
    return pages;
  }

  private async _reloadViewport(): Promise<void> {
    const wanted = this._pagesOf(...this._viewport);
    // Pages off screen are dropped rather than kept stale.
    for (const page of [...this._pages.keys()]) {
      if (!wanted.includes(page)) {
        this._pages.delete(page);
      }
    }
    await Promise.all(wanted.map(page => this._loadPage(page, true)));
  }

  private async _loadPage(page: number, reload = false): Promise<void> {
    const key = `${this._generation}:${page}`;
    if (this._loading.has(key) || (!reload && this._pages.has(page))) {
      return;
    }
    if (page > 0 && page * this.pageSize >= this._total && this._pages.size) {
      return;
    }
    const generation = this._generation;
    this._loading.add(key);
    try {
      const result = await fetchRuns(this._path, {
        ...this.effectiveQuery,
        limit: this.pageSize,
        offset: page * this.pageSize
      });
      if (generation !== this._generation) {
        return;
      }
      this._pages.set(page, result.runs);
      if (page === 0) {
        this._columnDefaults = null;
      }
      this._total = result.total;
      this._paramKeys = result.param_keys;
      this._metricKeys = result.metric_keys;
      this._setError(null);
      this._changed.emit();
    } catch (error) {
      if (generation === this._generation) {
        this._setError(messageOf(error));
      }
      throw error;
    } finally {
      this._loading.delete(key);
    }
  }

  private _setError(error: string | null): void {
    if (error !== this._error) {
      this._error = error;
      this._changed.emit();
    }
  }

  private _changed = new Signal<this, void>(this);
  private _path = '';
  private _status: IStoreStatus | null = null;
  private _token: string | null = null;
  private _error: string | null = null;
  private _query: IRunQuery = {
    sort: 'started_at',
    descending: true,
    kind: 'cell'
  };
  private _total = 0;
  private _paramKeys: string[] = [];
  private _metricKeys: string[] = [];
  private _chosenParams: string[] | null = null;
  private _chosenMetrics: string[] | null = null;
  private _columnDefaults: { params: string[]; metrics: string[] } | null =
    null;
  private _scope: RunsScope = 'notebook';
  private _local: IRunSummary[] | null = null;
  private _runSource: ((runId: string) => IRunSummary | undefined) | null =
    null;
  private _pages = new Map<number, IRunSummary[]>();
  private _loading = new Set<string>();
  private _generation = 0;
  private _viewport: [number, number] = [0, 0];
  private _selection: string[] = [];
  private _jobs = new Map<string, IJob>();
  private _jobTimers = new Set<ReturnType<typeof setTimeout>>();
  private _jobInterval: number;
  private _visible = true;
  private _isDisposed = false;
  private _poll: Poll;
}

/** The message to show for a failed request. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}
