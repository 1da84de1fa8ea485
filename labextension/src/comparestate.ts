/**
 * The runs the comparison views draw: the runs shown (the table's query, up to
 * a limit, fetched in one request) and the selected ones, with their metric
 * series. Follows the runs model; every request goes through api.ts.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { IMetricSeries, IRunSummary, fetchMetrics, fetchRuns } from './api';
import { Brushes, IParallelData, brushedRunIds } from './comparemodel';
import { runLabel } from './format';
import { RunsModel, messageOf } from './model';

/** Most runs the scatter, parallel coordinates and groups draw. */
export const COMPARE_LIMIT = 2000;
/** Most selected runs whose curves are fetched. */
export const CURVE_LIMIT = 12;

export class CompareState {
  constructor(model: RunsModel, limit = COMPARE_LIMIT) {
    this.model = model;
    this.limit = limit;
    model.changed.connect(this._onModel, this);
  }

  readonly model: RunsModel;
  readonly limit: number;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The runs shown by the table's query (the newest `limit`), a brush aside. */
  get runs(): IRunSummary[] {
    return this._runs;
  }

  /** More runs match than the views draw. */
  get truncated(): boolean {
    return this._total > this._runs.length;
  }

  get total(): number {
    return this._total;
  }

  get error(): string | null {
    return this._error;
  }

  get loading(): boolean {
    return this._loading;
  }

  /** The selected runs that are known here, in selection order. */
  get selected(): IRunSummary[] {
    return this.model.selection
      .map(id => this._byId.get(id) ?? this.model.findRun(id))
      .filter((run): run is IRunSummary => run !== undefined);
  }

  /** The parallel coordinates' brushed intervals per axis (empty: no brush). */
  get brushes(): Brushes {
    return this._brushes;
  }

  /**
   * Brush one axis of the parallel coordinates drawn from `data` (of `runs`):
   * the table shows only the runs inside every brushed axis, with no request.
   */
  brush(
    data: IParallelData,
    axis: number,
    intervals: [number, number][],
    runs: readonly IRunSummary[]
  ): void {
    const brushes = new Map(this._brushes);
    brushes.set(axis, intervals);
    this._brushes = brushes;
    const kept = brushedRunIds(data, brushes);
    if (kept === null) {
      this.model.setLocalRuns(null);
    } else {
      const keep = new Set(kept);
      this.model.setLocalRuns(runs.filter(run => keep.has(run.run_id)));
    }
  }

  /** Forget the brush and show the table's own rows again (a chart drawn anew has none). */
  clearBrush(): void {
    this._brushes = new Map();
    if (this.model.isLocallyFiltered) {
      this.model.setLocalRuns(null);
    }
  }

  /** Start following the runs model (the views are on screen). */
  activate(): void {
    this._active = true;
    void this._sync();
  }

  /** The step series of the selected runs (the first {@link CURVE_LIMIT}). */
  async seriesOfSelected(): Promise<
    { run: IRunSummary; series: IMetricSeries }[]
  > {
    const runs = this.selected.slice(0, CURVE_LIMIT);
    const token = this.model.status?.change_token ?? '';
    if (token !== this._seriesToken) {
      this._series.clear();
      this._seriesToken = token;
    }
    return Promise.all(
      runs.map(async run => {
        let series = this._series.get(run.run_id);
        if (series === undefined) {
          series = fetchMetrics(this.model.path, run.run_id);
          this._series.set(run.run_id, series);
          series.catch(() => this._series.delete(run.run_id));
        }
        return { run, series: await series };
      })
    );
  }

  labelOf(run: IRunSummary): string {
    return runLabel(run);
  }

  dispose(): void {
    this.model.changed.disconnect(this._onModel, this);
    Signal.clearData(this);
  }

  private _onModel(): void {
    // Another store, scope or query: a brush drawn over the old runs means nothing
    // now, and the old runs must not be drawn (or brushed) while the new ones load.
    const context = JSON.stringify([
      this.model.path,
      this.model.effectiveQuery
    ]);
    if (context !== this._context) {
      this._context = context;
      // The runs are dropped here, so the next sync must fetch even if it comes
      // back to the runs fetched last (A, then B before it loaded, then A again).
      this._key = '';
      const brushed = this._brushes.size > 0 || this.model.isLocallyFiltered;
      this.clearBrush();
      if (brushed || this._runs.length) {
        this._runs = [];
        this._total = 0;
        this._byId = new Map();
        this._changed.emit();
      }
    }
    if (this._active) {
      void this._sync();
    }
  }

  /** Fetch again when the query, the store or its content moved; otherwise pass the news on. */
  private async _sync(): Promise<void> {
    const model = this.model;
    if (model.status === null) {
      return;
    }
    const key = JSON.stringify([
      model.path,
      model.effectiveQuery,
      model.status.change_token
    ]);
    if (key === this._key) {
      return;
    }
    this._key = key;
    this._loading = true;
    this._changed.emit();
    try {
      const page = await fetchRuns(model.path, {
        ...model.effectiveQuery,
        limit: this.limit,
        offset: 0
      });
      if (key !== this._key) {
        return;
      }
      this._runs = page.runs;
      this._total = page.total;
      this._byId = new Map(page.runs.map(r => [r.run_id, r]));
      this._error = null;
    } catch (error) {
      if (key === this._key) {
        this._error = messageOf(error);
        this._key = '';
      }
    } finally {
      if (key === this._key || this._key === '') {
        this._loading = false;
        this._changed.emit();
      }
    }
  }

  private _active = false;
  private _context = '';
  private _brushes: Brushes = new Map();
  private _key = '';
  private _runs: IRunSummary[] = [];
  private _byId = new Map<string, IRunSummary>();
  private _total = 0;
  private _error: string | null = null;
  private _loading = false;
  private _series = new Map<string, Promise<IMetricSeries>>();
  private _seriesToken = '';
  private _changed = new Signal<this, void>(this);
}
