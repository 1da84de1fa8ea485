/**
 * The metric-curve chart's option: what ECharts draws in the run detail view
 * and the Runs tab's Curves view, in the panel's one palette.
 */
import { palette } from '../charts';
import { ICurve } from '../comparemodel';
import { curveOption } from '../curvechart';

interface ISeries {
  name: string;
  data: [number, number][];
  showSymbol: boolean;
  color: string;
  silent?: boolean;
}

function seriesOf(option: object): ISeries[] {
  return (option as { series: ISeries[] }).series;
}

const TWO: ICurve[] = [
  {
    runId: 'a',
    label: 'train aaaaaaaa',
    points: [
      [0, 1.5],
      [1, 0.5]
    ]
  },
  { runId: 'b', label: 'train bbbbbbbb', points: [[0, 0.9]] }
];

describe('the metric curve chart', () => {
  afterEach(() => {
    document.body.style.removeProperty('--jp-brand-color1');
  });

  it('draws one line per run in the palette, a lone point as a dot', () => {
    const option = curveOption('loss', TWO, { x: 'step' });
    const series = seriesOf(option);
    expect(series.map(s => [s.name, s.data.length, s.showSymbol])).toEqual([
      ['train aaaaaaaa', 2, false],
      ['train bbbbbbbb', 1, true]
    ]);
    expect(series.map(s => s.color)).toEqual(palette().slice(0, 2));
    const o = option as {
      xAxis: { type: string; name: string };
      yAxis: { type: string; name: string };
      legend: { show: boolean };
    };
    expect([o.xAxis.type, o.xAxis.name]).toEqual(['value', 'step']);
    expect([o.yAxis.type, o.yAxis.name]).toEqual(['value', 'loss']);
    expect(o.legend.show).toBe(true);
  });

  it('puts wall time on a time axis and hovers with the shared number format', () => {
    const option = curveOption('loss', TWO.slice(0, 1), {
      x: 'time',
      log: true
    }) as {
      xAxis: { type: string };
      yAxis: { type: string };
      legend: { show: boolean };
      tooltip: { trigger: string; valueFormatter: (v: number) => string };
      dataZoom: { type: string }[];
    };
    expect(option.xAxis.type).toBe('time');
    expect(option.yAxis.type).toBe('log');
    expect(option.tooltip.trigger).toBe('axis');
    expect(option.tooltip.valueFormatter(0.0001)).toBe('0.0001');
    // One run: no legend to read; the wheel zooms, no slider in a narrow view.
    expect(option.legend.show).toBe(false);
    expect(option.dataZoom.map(z => z.type)).toEqual(['inside']);
  });

  it('draws the raw curves faint and silent under the smoothed ones', () => {
    const series = seriesOf(
      curveOption('loss', TWO, { x: 'step', raw: TWO, slider: true })
    );
    expect(series).toHaveLength(4);
    expect(series.slice(2).map(s => [s.name, s.silent, s.color])).toEqual([
      ['train aaaaaaaa', true, series[0].color],
      ['train bbbbbbbb', true, series[1].color]
    ]);
  });

  it("takes its colours from JupyterLab's theme at draw time", () => {
    document.body.style.setProperty('--jp-brand-color1', '#123456');
    expect(palette()[0]).toBe('#123456');
    expect(seriesOf(curveOption('loss', TWO, { x: 'step' }))[0].color).toBe(
      '#123456'
    );
  });
});
