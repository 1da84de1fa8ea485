/**
 * The model of the run detail view: the full record and the metric step series
 * of one or more runs, fetched once.
 */
import { IMetricSeries, IRun, fetchMetrics, fetchRun } from './api';
import { ICurve, XAxisMode, curves } from './comparemodel';
import { FetchModel } from './fetchmodel';
import { runLabel } from './format';
import { isSystemKey } from './sysmodel';

export namespace RunDetailModel {
  export interface IOptions {
    /** Server-relative path of the notebook whose store holds the runs. */
    path: string;
    runIds: string[];
  }
}

interface IDetail {
  runs: IRun[];
  series: IMetricSeries[];
}

/** The runs of a detail view and their metric curves. */
export class RunDetailModel extends FetchModel<IDetail> {
  constructor(options: RunDetailModel.IOptions) {
    const { path, runIds } = options;
    super(async () => {
      const [runs, series] = await Promise.all([
        Promise.all(runIds.map(id => fetchRun(path, id))),
        Promise.all(runIds.map(id => fetchMetrics(path, id)))
      ]);
      return { runs, series };
    });
    this._runIds = [...runIds];
    this._path = path;
  }

  /** Server-relative path of the notebook whose store holds the runs. */
  get path(): string {
    return this._path;
  }

  /** The raw series of each run, in the order asked (empty until loaded). */
  get series(): IMetricSeries[] {
    return this.data?.series ?? [];
  }

  /** The runs asked for, in the order asked. */
  get runIds(): string[] {
    return [...this._runIds];
  }

  /** Everything recorded about each run (empty until loaded). */
  get runs(): IRun[] {
    return this.data?.runs ?? [];
  }

  /** Names of the metrics any of the runs logged, sorted. */
  get metricKeys(): string[] {
    const keys = new Set<string>();
    for (const series of this.data?.series ?? []) {
      // system/ series have their own section (sysview.ts), on a time axis.
      Object.keys(series.series)
        .filter(key => !isSystemKey(key))
        .forEach(key => keys.add(key));
    }
    return [...keys].sort();
  }

  /**
   * The curve of one metric for each run, as the Runs tab draws curves: x the
   * step (a point logged without one sits at its position) or the wall time in
   * epoch milliseconds; non-finite values left out. A run that did not log the
   * metric has a curve with no points.
   */
  curves(key: string, x: XAxisMode = 'step'): ICurve[] {
    const data = this.data;
    if (data === null) {
      return [];
    }
    return curves(
      data.series.map((series, index) => ({
        runId: data.runs[index].run_id,
        label: runLabel(data.runs[index]),
        points: series.series[key] ?? []
      })),
      { x, smoothing: 0, log: false }
    ).curves;
  }

  private _runIds: string[];
  private _path: string;
}
