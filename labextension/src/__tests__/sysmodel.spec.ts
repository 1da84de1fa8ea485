/**
 * A run's system metrics grouped into charts on a time axis, and its end-of-run figures.
 */
import { IMetricSeries } from '../api';
import { isSystemKey, systemCharts, systemFacts } from '../sysmodel';

const T0 = 1_790_000_000; // seconds since the epoch, as recorded
const series = (
  values: number[]
): { step: number; value: number; ts: number }[] =>
  values.map((value, i) => ({ step: i, value, ts: T0 + 2 * i }));

const RUN: IMetricSeries = {
  run_id: 'r',
  series: {
    loss: series([1, 0.5]),
    'system/cpu_percent': series([99, 101, 98]),
    'system/rss_mb': series([100, 600]),
    'system/disk_write_mb': series([0, 5]),
    'system/disk_read_mb': series([1, 1]),
    'system/gpu0_memory_mb': series([10, 20]),
    'system/gpu0_utilization_percent': series([0, 80]),
    'system/new_thing': series([1, 2]),
    'system/peak_rss_mb': series([600]),
    'system/cpu_time_s': [{ step: 0, value: 'NaN', ts: T0 }]
  }
};

describe('system metrics', () => {
  it('groups sampled series into CPU, memory, disk and GPU charts, then the unknown', () => {
    const charts = systemCharts(RUN);
    expect(charts.map(c => [c.title, c.lines.map(l => l.label)])).toEqual([
      ['CPU', ['cpu_percent']],
      ['Memory', ['rss_mb']],
      ['Disk', ['disk_read_mb', 'disk_write_mb']],
      ['GPU utilisation', ['gpu0_utilization_percent']],
      ['GPU memory', ['gpu0_memory_mb']],
      ['new_thing', ['new_thing']]
    ]);
    // Wall time in milliseconds on x.
    expect(charts[0].lines[0].points[1]).toEqual([(T0 + 2) * 1000, 101]);
  });

  it('shows one-value figures as facts and leaves logged metrics out', () => {
    expect(systemFacts(RUN)).toEqual([
      ['cpu_time_s', NaN],
      ['peak_rss_mb', 600]
    ]);
    expect(isSystemKey('loss')).toBe(false);
    expect(
      systemCharts({ run_id: 'r', series: { loss: series([1, 2]) } })
    ).toEqual([]);
  });
});
