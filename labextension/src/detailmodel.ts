/**
 * The model of the run detail view: the full record and the metric step series
 * of one or more runs, fetched once.
 */
import { IMetricSeries, IRun, fetchMetrics, fetchRun, toNumber } from './api';
import { FetchModel } from './fetchmodel';
import { isSystemKey } from './sysmodel';

export namespace RunDetailModel {
  export interface IOptions {
    /** Server-relative path of the notebook whose store holds the runs. */
    path: string;
    runIds: string[];
  }
}

/** One run's points of one metric, as (step, value); a point without a step sits at its position. */
export interface ICurve {
  run: IRun;
  points: [number, number][];
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

  /** The curve of one metric for each run (no points when a run did not log it). */
  curves(key: string): ICurve[] {
    const data = this.data;
    if (data === null) {
      return [];
    }
    return data.series.map((series, index) => ({
      run: data.runs[index],
      points: (series.series[key] ?? []).map(
        (point, position): [number, number] => [
          point.step ?? position,
          toNumber(point.value)
        ]
      )
    }));
  }

  private _runIds: string[];
  private _path: string;
}
