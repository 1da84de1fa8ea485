/**
 * The view models of the Runs tab's table and comparison views: pure functions
 * from runs to what a chart or a column list shows. No DOM, no ECharts, no
 * requests, so jest checks every rule here.
 */
import { IMetricPoint, IRunSummary, ParamValue, toNumber } from './api';

/** Which values of a run: its parameters or its metrics. */
export type ValueGroup = 'params' | 'metrics';

/** A param or metric named as the server sorts by it: `params.lr`, `metrics.acc`. */
export interface IValueKey {
  group: ValueGroup;
  key: string;
}

/** `params.lr` → {group: 'params', key: 'lr'}; anything else is a metric name. */
export function parseValueKey(id: string): IValueKey {
  if (id.startsWith('params.')) {
    return { group: 'params', key: id.slice(7) };
  }
  return {
    group: 'metrics',
    key: id.startsWith('metrics.') ? id.slice(8) : id
  };
}

export function valueOf(
  run: IRunSummary,
  spec: IValueKey
): ParamValue | undefined {
  return spec.group === 'params' ? run.params[spec.key] : run.metrics[spec.key];
}

/** System metrics (`system/cpu`...) come after the ones the user logged. */
export function isSystemMetric(key: string): boolean {
  return key.startsWith('system/');
}

/**
 * The keys of `group` split into those whose value varies among `runs` (two or
 * more distinct values among the runs that have the key) and those that do
 * not; keys no run has are left out. Each list keeps `keys`' order, system
 * metrics last.
 */
export function splitVarying(
  runs: readonly IRunSummary[],
  group: ValueGroup,
  keys?: readonly string[]
): { varying: string[]; constant: string[] } {
  const seen = new Map<string, Set<string>>();
  for (const run of runs) {
    const values = group === 'params' ? run.params : run.metrics;
    for (const [key, value] of Object.entries(values)) {
      let distinct = seen.get(key);
      if (distinct === undefined) {
        distinct = new Set();
        seen.set(key, distinct);
      }
      if (distinct.size < 2) {
        distinct.add(JSON.stringify(value));
      }
    }
  }
  const ordered = [...(keys ?? [...seen.keys()].sort())].filter(k =>
    seen.has(k)
  );
  const rank = (k: string): number => (isSystemMetric(k) ? 1 : 0);
  ordered.sort((a, b) => rank(a) - rank(b));
  return {
    varying: ordered.filter(k => seen.get(k)!.size > 1),
    constant: ordered.filter(k => seen.get(k)!.size === 1)
  };
}

/**
 * The value columns a table shows before the user picks: the keys that vary
 * among the shown runs first (at most `max`), topped up with constant ones
 * when fewer than `min` vary.
 */
export function defaultColumns(
  runs: readonly IRunSummary[],
  group: ValueGroup,
  keys?: readonly string[],
  max = 6,
  min = 2
): string[] {
  const { varying, constant } = splitVarying(runs, group, keys);
  const userConstant = constant.filter(k => !isSystemMetric(k));
  const chosen = varying.filter(k => !isSystemMetric(k)).slice(0, max);
  return chosen.length >= min
    ? chosen
    : [...chosen, ...userConstant.slice(0, min - chosen.length)];
}

// ------------------------------------------------------------------ parallel coordinates

/** One axis of the parallel coordinates. */
export interface IAxis {
  id: string;
  label: string;
  /** Numbers on a value axis; anything else on a category axis. */
  type: 'value' | 'category';
  categories: string[];
}

export interface IParallelData {
  axes: IAxis[];
  /** Runs that have a value on every axis, in the order given. */
  runIds: string[];
  /** One row per run: a number per axis (a category's index on category axes). */
  rows: number[][];
}

/**
 * Parallel coordinates over `runs`: one axis per parameter in `params`, then
 * the metric. Runs missing a value on an axis are left out (they cannot be drawn).
 */
export function parallelData(
  runs: readonly IRunSummary[],
  params: readonly string[],
  metric: string
): IParallelData {
  const specs: IValueKey[] = [
    ...params.map(key => ({ group: 'params' as const, key })),
    { group: 'metrics', key: metric }
  ];
  const drawn = runs.filter(run =>
    specs.every(spec => {
      const value = valueOf(run, spec);
      return value !== undefined && value !== null;
    })
  );
  const axes: IAxis[] = specs.map(spec => {
    const values = drawn.map(run => valueOf(run, spec));
    const numeric = values.every(
      v =>
        typeof v === 'number' ||
        v === 'NaN' ||
        v === 'Infinity' ||
        v === '-Infinity'
    );
    const categories = numeric
      ? []
      : [...new Set(values.map(v => categoryOf(v)))].sort();
    return {
      id: `${spec.group}.${spec.key}`,
      label: spec.key,
      type: numeric ? 'value' : 'category',
      categories
    };
  });
  const rows = drawn.map(run =>
    specs.map((spec, i) => {
      const value = valueOf(run, spec);
      return axes[i].type === 'value'
        ? toNumber(value)
        : axes[i].categories.indexOf(categoryOf(value));
    })
  );
  return { axes, runIds: drawn.map(r => r.run_id), rows };
}

function categoryOf(value: ParamValue | undefined): string {
  return typeof value === 'string' ? value : JSON.stringify(value ?? null);
}

/** Brushed intervals per axis index ([low, high], in the axis' own units). */
export type Brushes = ReadonlyMap<
  number,
  readonly (readonly [number, number])[]
>;

/**
 * The runs inside every brushed axis (an axis with several intervals keeps a
 * value inside any of them); null when nothing is brushed (no filter).
 */
export function brushedRunIds(
  data: IParallelData,
  brushes: Brushes
): string[] | null {
  const active = [...brushes.entries()].filter(([, ranges]) => ranges.length);
  if (active.length === 0) {
    return null;
  }
  const kept: string[] = [];
  for (let r = 0; r < data.rows.length; r++) {
    const row = data.rows[r];
    let inside = true;
    for (const [axis, ranges] of active) {
      const value = row[axis];
      if (!ranges.some(([lo, hi]) => value >= lo && value <= hi)) {
        inside = false;
        break;
      }
    }
    if (inside) {
      kept.push(data.runIds[r]);
    }
  }
  return kept;
}

// ------------------------------------------------------------------ scatter and bars

/** A scatter point: x, y and the run it is. */
export interface IScatterPoint {
  x: number | string;
  y: number;
  runId: string;
  label: string;
}

/** Points of `y` (a metric, usually) against `x` (a parameter, usually); unplottable runs left out. */
export function scatterPoints(
  runs: readonly IRunSummary[],
  x: IValueKey,
  y: IValueKey,
  labelOf: (run: IRunSummary) => string
): { points: IScatterPoint[]; categorical: boolean } {
  const raw = runs.map(run => ({
    run,
    x: valueOf(run, x),
    y: toNumber(valueOf(run, y))
  }));
  const usable = raw.filter(
    p => p.x !== undefined && p.x !== null && Number.isFinite(p.y)
  );
  const categorical = usable.some(p => typeof p.x !== 'number');
  const points = usable
    .map(p => ({
      x: categorical ? categoryOf(p.x) : toNumber(p.x),
      y: p.y,
      runId: p.run.run_id,
      label: labelOf(p.run)
    }))
    .filter(p => typeof p.x === 'string' || Number.isFinite(p.x));
  return { points, categorical };
}

/** One bar chart per metric: the selected runs side by side. */
export interface IBarGroup {
  metric: string;
  bars: { runId: string; label: string; value: number | null }[];
}

/**
 * Scalar metrics of the selected runs, a group per metric the runs have (user
 * metrics first); a run without a finite value gets an empty bar (null).
 */
export function barGroups(
  runs: readonly IRunSummary[],
  labelOf: (run: IRunSummary) => string,
  keys?: readonly string[]
): IBarGroup[] {
  const { varying, constant } = splitVarying(runs, 'metrics', keys);
  return [...varying, ...constant]
    .sort((a, b) => Number(isSystemMetric(a)) - Number(isSystemMetric(b)))
    .map(metric => ({
      metric,
      bars: runs.map(run => {
        const value = toNumber(run.metrics[metric]);
        return {
          runId: run.run_id,
          label: labelOf(run),
          value: Number.isFinite(value) ? value : null
        };
      })
    }));
}

// ------------------------------------------------------------------ curves

/**
 * Exponential moving average with TensorBoard's debiasing (the first points are
 * not pulled toward 0). `weight` 0 is no smoothing, 0.99 very smooth;
 * non-finite values stay as they are and do not enter the average.
 */
export function smooth(values: readonly number[], weight: number): number[] {
  const w = Math.min(Math.max(weight, 0), 0.999);
  if (w === 0) {
    return [...values];
  }
  let last = 0;
  let count = 0;
  return values.map(value => {
    if (!Number.isFinite(value)) {
      return value;
    }
    last = last * w + (1 - w) * value;
    count += 1;
    return last / (1 - Math.pow(w, count));
  });
}

export type XAxisMode = 'step' | 'time';

/** One curve: a run's series of one metric, ready to draw. */
export interface ICurve {
  runId: string;
  label: string;
  /** [x, y]: x a step, or a time in epoch milliseconds. */
  points: [number, number][];
}

export interface ICurveOptions {
  x: XAxisMode;
  /** EMA weight in [0, 1). */
  smoothing: number;
  log: boolean;
}

/**
 * The curves of one metric, one per run. On a log axis a value <= 0 cannot be
 * drawn: those points are left out and counted in `hidden`, so the view can say so.
 */
export function curves(
  series: readonly {
    runId: string;
    label: string;
    points: readonly IMetricPoint[];
  }[],
  options: ICurveOptions
): { curves: ICurve[]; hidden: number } {
  let hidden = 0;
  const result = series.map(({ runId, label, points }) => {
    const ordered = points
      .map((p, index) => ({
        x: options.x === 'time' ? p.ts * 1000 : (p.step ?? index),
        y: toNumber(p.value)
      }))
      .filter(p => Number.isFinite(p.y) && Number.isFinite(p.x))
      .sort((a, b) => a.x - b.x);
    const ys = smooth(
      ordered.map(p => p.y),
      options.smoothing
    );
    const drawn: [number, number][] = [];
    ordered.forEach((p, i) => {
      if (options.log && !(ys[i] > 0)) {
        hidden += 1;
        return;
      }
      drawn.push([p.x, ys[i]]);
    });
    return { runId, label, points: drawn };
  });
  return { curves: result, hidden };
}
