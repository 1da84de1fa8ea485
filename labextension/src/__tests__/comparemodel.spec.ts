/**
 * The view models of the Runs tab: which columns show first, what a brush
 * keeps, how curves smooth and what a log axis cannot draw.
 */
import { IMetricPoint, IRunSummary } from '../api';
import { summaryRun } from './fixtures';
import {
  barGroups,
  brushedRunIds,
  curves,
  defaultColumns,
  parallelData,
  parseValueKey,
  scatterPoints,
  smooth,
  splitVarying
} from '../comparemodel';

let counter = 0;

function run(fields: Partial<IRunSummary>): IRunSummary {
  counter += 1;
  return summaryRun(String(counter).padStart(32, '0'), {
    started_at: `2026-01-01T10:${String(counter % 60).padStart(2, '0')}:00Z`,
    ...fields
  });
}

const label = (r: IRunSummary): string => r.run_id.slice(-4);

describe('the columns a table shows first', () => {
  it('are the params that vary among the shown runs, not the first ones by name', () => {
    // Given a sweep over model and max_depth with a constant seed and an unrelated key
    const runs = [
      run({ params: { alpha: 1, model: 'rf', max_depth: 3, seed: 0 } }),
      run({ params: { alpha: 1, model: 'gb', max_depth: 5, seed: 0 } }),
      run({ params: { alpha: 1, model: 'gb', max_depth: 3, seed: 0 } })
    ];
    // When the table picks its columns
    const split = splitVarying(runs, 'params');
    // Then the varying ones come first, the constant ones after
    expect(split.varying).toEqual(['max_depth', 'model']);
    expect(split.constant).toEqual(['alpha', 'seed']);
    expect(defaultColumns(runs, 'params')).toEqual(['max_depth', 'model']);
  });

  it('tops up with constant keys when nothing varies, and leaves out keys no shown run has', () => {
    const runs = [
      run({ params: { lr: 0.1, seed: 1 } }),
      run({ params: { lr: 0.1, seed: 1 } })
    ];
    expect(
      defaultColumns(runs, 'params', ['label_noise', 'lr', 'seed'])
    ).toEqual(['lr', 'seed']);
  });

  it('puts system metrics after the logged ones and never picks them by default', () => {
    const runs = [
      run({ metrics: { 'system/cpu': 10, acc: 0.8, loss: 0.3 } }),
      run({ metrics: { 'system/cpu': 12, acc: 0.9, loss: 0.3 } })
    ];
    expect(splitVarying(runs, 'metrics').varying).toEqual([
      'acc',
      'system/cpu'
    ]);
    expect(defaultColumns(runs, 'metrics')).toEqual(['acc', 'loss']);
  });

  it('reads sort keys as the server names them', () => {
    expect(parseValueKey('params.lr')).toEqual({ group: 'params', key: 'lr' });
    expect(parseValueKey('metrics.val/acc')).toEqual({
      group: 'metrics',
      key: 'val/acc'
    });
  });
});

describe('parallel coordinates', () => {
  const runs = [
    run({ params: { lr: 0.1, model: 'rf' }, metrics: { acc: 0.7 } }),
    run({ params: { lr: 0.01, model: 'gb' }, metrics: { acc: 0.9 } }),
    run({ params: { lr: 0.001, model: 'gb' }, metrics: { acc: 0.8 } }),
    run({ params: { model: 'gb' }, metrics: { acc: 0.5 } })
  ];
  const data = parallelData(runs, ['lr', 'model'], 'acc');

  it('have an axis per parameter and the metric; strings on category axes', () => {
    expect(data.axes.map(a => [a.label, a.type])).toEqual([
      ['lr', 'value'],
      ['model', 'category'],
      ['acc', 'value']
    ]);
    expect(data.axes[1].categories).toEqual(['gb', 'rf']);
    // the run without lr cannot be drawn
    expect(data.runIds).toEqual(runs.slice(0, 3).map(r => r.run_id));
    expect(data.rows[0]).toEqual([0.1, 1, 0.7]);
  });

  it('filter the table to the runs inside every brushed axis', () => {
    expect(brushedRunIds(data, new Map())).toBeNull();
    const accAbove = new Map([[2, [[0.75, 1] as const]]]);
    expect(brushedRunIds(data, accAbove)).toEqual([
      runs[1].run_id,
      runs[2].run_id
    ]);
    // two axes: both must hold; two intervals on one axis: either may
    const both = new Map<number, (readonly [number, number])[]>([
      [2, [[0.75, 1]]],
      [
        0,
        [
          [0.005, 0.05],
          [0.5, 1]
        ]
      ]
    ]);
    expect(brushedRunIds(data, both)).toEqual([runs[1].run_id]);
    // a category axis is brushed by index
    expect(brushedRunIds(data, new Map([[1, [[0.9, 1.1] as const]]]))).toEqual([
      runs[0].run_id
    ]);
  });

  it('keep the right runs of a 1,000-run sweep', () => {
    const many = Array.from({ length: 1000 }, (_, i) =>
      run({
        params: { lr: i / 1000, depth: i % 7 },
        metrics: { acc: ((i * 7919) % 1000) / 1000 }
      })
    );
    const big = parallelData(many, ['lr', 'depth'], 'acc');
    const kept = brushedRunIds(
      big,
      new Map([
        [2, [[0.5, 1] as const]],
        [1, [[2, 4] as const]]
      ])
    );
    const expected = many.filter(
      r =>
        (r.metrics.acc as number) >= 0.5 &&
        [2, 3, 4].includes(r.params.depth as number)
    );
    expect(kept).toEqual(expected.map(r => r.run_id));
  });
});

describe('scatter and bars', () => {
  it('plot a metric against a parameter, leaving out runs without either', () => {
    const runs = [
      run({ params: { lr: 0.1 }, metrics: { acc: 0.7 } }),
      run({ params: { lr: 0.2 }, metrics: { acc: 'NaN' } }),
      run({ params: {}, metrics: { acc: 0.9 } })
    ];
    const { points, categorical } = scatterPoints(
      runs,
      { group: 'params', key: 'lr' },
      { group: 'metrics', key: 'acc' },
      label
    );
    expect(categorical).toBe(false);
    expect(points).toEqual([
      { x: 0.1, y: 0.7, runId: runs[0].run_id, label: label(runs[0]) }
    ]);
  });

  it('show scalar metrics of the selected runs side by side, one group per metric', () => {
    // Given three selected runs that each logged acc once (a scalar, no steps)
    const runs = [
      run({ metrics: { acc: 0.7, 'system/cpu': 3 } }),
      run({ metrics: { acc: 0.9 } }),
      run({ metrics: { acc: 'Infinity' } })
    ];
    const groups = barGroups(runs, label);
    expect(groups.map(g => g.metric)).toEqual(['acc', 'system/cpu']);
    expect(groups[0].bars.map(b => b.value)).toEqual([0.7, 0.9, null]);
    expect(groups[1].bars.map(b => b.value)).toEqual([3, null, null]);
  });
});

describe('metric curves', () => {
  const points = (values: (number | 'NaN')[]): IMetricPoint[] =>
    values.map((value, step) => ({ step, value, ts: 1_700_000_000 + step }));

  it('smooth with an EMA that starts at the first value, not at zero', () => {
    expect(smooth([1, 1, 1], 0.9).map(v => Number(v.toFixed(9)))).toEqual([
      1, 1, 1
    ]);
    const s = smooth([0, 10, 0, 10], 0.5);
    expect(s[0]).toBe(0);
    expect(s[1]).toBeCloseTo((10 * 0.5) / 0.75);
    expect(smooth([1, 2], 0)).toEqual([1, 2]);
    expect(Number.isNaN(smooth([1, NaN, 3], 0.5)[1])).toBe(true);
  });

  it('put steps or wall time on x, sorted', () => {
    const series = [{ runId: 'a', label: 'a', points: points([3, 2, 1]) }];
    expect(
      curves(series, { x: 'step', smoothing: 0, log: false }).curves[0].points
    ).toEqual([
      [0, 3],
      [1, 2],
      [2, 1]
    ]);
    const timed = curves(series, { x: 'time', smoothing: 0, log: false });
    expect(timed.curves[0].points[0]).toEqual([1_700_000_000_000, 3]);
  });

  it('leave out and count the values a log axis cannot draw', () => {
    const series = [
      { runId: 'a', label: 'a', points: points([1, 0, -2, 'NaN', 10]) }
    ];
    const result = curves(series, { x: 'step', smoothing: 0, log: true });
    expect(result.curves[0].points).toEqual([
      [0, 1],
      [4, 10]
    ]);
    expect(result.hidden).toBe(2);
  });
});
