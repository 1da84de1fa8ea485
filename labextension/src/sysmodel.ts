/**
 * A run's system metrics (nbtrack.sysmetrics: series under `system/`) grouped into
 * the charts a user expects — CPU, memory, disk, per GPU device — with wall time on
 * x; the one-value figures a run adds when it ends (peaks, CPU time) as facts.
 */
import { IMetricSeries, toNumber } from './api';

export const SYSTEM_PREFIX = 'system/';

export interface ISystemLine {
  /** The series name without `system/`. */
  label: string;
  /** [epoch milliseconds, value]; non-finite values left out. */
  points: [number, number][];
}

export interface ISystemChart {
  title: string;
  unit: string;
  lines: ISystemLine[];
}

/** Which chart a series belongs to. */
const GROUPS: { title: string; unit: string; match: RegExp }[] = [
  { title: 'CPU', unit: '% of one core', match: /^cpu_percent$/ },
  { title: 'Memory', unit: 'MB', match: /^rss_mb$/ },
  {
    title: 'Disk',
    unit: 'MB since the start',
    match: /^disk_(read|write)_mb$/
  },
  {
    title: 'GPU utilisation',
    unit: '%',
    match: /^gpu\d+_utilization_percent$/
  },
  { title: 'GPU memory', unit: 'MB', match: /^gpu\d+_memory_mb$/ }
];

/** Seconds since the epoch (as recorded) to milliseconds (what a time axis wants). */
const millis = (ts: number): number => (ts < 1e11 ? ts * 1000 : ts);

/** True for a key the system sampler wrote. */
export function isSystemKey(key: string): boolean {
  return key.startsWith(SYSTEM_PREFIX);
}

/**
 * The charts of a run's sampled series, in a fixed order; a series of one point
 * (a figure added at the end) is a fact, not a line. Unknown sampled series get a
 * chart of their own, so a newer sampler's series still show.
 */
export function systemCharts(series: IMetricSeries): ISystemChart[] {
  const charts = new Map<string, ISystemChart>();
  for (const [key, points] of Object.entries(series.series).sort(([a], [b]) =>
    a.localeCompare(b)
  )) {
    if (!isSystemKey(key) || points.length < 2) {
      continue;
    }
    const label = key.slice(SYSTEM_PREFIX.length);
    const group = GROUPS.find(g => g.match.test(label)) ?? {
      title: label,
      unit: ''
    };
    const chart = charts.get(group.title) ?? {
      title: group.title,
      unit: group.unit,
      lines: []
    };
    chart.lines.push({
      label,
      points: points
        .map((point): [number, number] => [
          millis(point.ts),
          toNumber(point.value)
        ])
        .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
        .sort((p, q) => p[0] - q[0])
    });
    charts.set(group.title, chart);
  }
  const order = GROUPS.map(g => g.title);
  return [...charts.values()].sort((a, b) => {
    const [i, j] = [order.indexOf(a.title), order.indexOf(b.title)];
    return (
      (i < 0 ? order.length : i) - (j < 0 ? order.length : j) ||
      a.title.localeCompare(b.title)
    );
  });
}

/** The one-value system figures (peak memory, CPU time …) as [name, value]. */
export function systemFacts(series: IMetricSeries): [string, number][] {
  return Object.entries(series.series)
    .filter(([key, points]) => isSystemKey(key) && points.length === 1)
    .map(([key, points]): [string, number] => [
      key.slice(SYSTEM_PREFIX.length),
      toNumber(points[0].value)
    ])
    .sort(([a], [b]) => a.localeCompare(b));
}
