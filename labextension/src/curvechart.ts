/**
 * The ECharts option of a metric-curve chart, the same look wherever curves
 * show (the Runs tab's Curves view, the run detail view): one line per run,
 * step or wall time on x, hover for every run's value, zoom. Pure: jest checks it.
 */
import type { EChartsCoreOption } from 'echarts/core';

import { axisStyle, baseOption, palette } from './charts';
import { ICurve, XAxisMode } from './comparemodel';
import { formatNumber } from './format';

export interface ICurveChartOptions {
  x: XAxisMode;
  /** A log y axis (the curves hold no value <= 0 then: comparemodel.curves left them out). */
  log?: boolean;
  /** The unsmoothed curves, drawn faint under the smoothed ones. */
  raw?: readonly ICurve[];
  /** A zoom slider under the chart (wide views); the wheel and drag zoom always. */
  slider?: boolean;
}

/** The option of one metric's chart: `curves` (one per run) in the one palette. */
export function curveOption(
  metric: string,
  curves: readonly ICurve[],
  options: ICurveChartOptions
): EChartsCoreOption {
  const colors = palette();
  const base = baseOption();
  const series: object[] = curves.map((curve, i) => ({
    type: 'line',
    name: curve.label,
    data: curve.points,
    // A scalar (one point) must show: a line of one point draws nothing.
    showSymbol: curve.points.length <= 1,
    symbolSize: 6,
    sampling: 'lttb',
    lineStyle: { width: 1.6 },
    color: colors[i % colors.length]
  }));
  options.raw?.forEach((curve, i) =>
    series.push({
      type: 'line',
      name: curve.label,
      data: curve.points,
      showSymbol: false,
      silent: true,
      tooltip: { show: false },
      lineStyle: { width: 1, opacity: 0.25 },
      color: colors[i % colors.length]
    })
  );
  const slider = options.slider ?? false;
  const time = options.x === 'time';
  const axis = axisStyle();
  return {
    ...base,
    legend: {
      ...(base.legend as object),
      show: curves.length > 1,
      data: curves.map(curve => curve.label)
    },
    grid: {
      left: 60,
      right: 24,
      // The legend on top, the y axis' name under it.
      top: curves.length > 1 ? 44 : 24,
      bottom: slider ? 64 : 30
    },
    tooltip: {
      ...(base.tooltip as object),
      trigger: 'axis',
      valueFormatter: (v: number) => formatNumber(v)
    },
    xAxis: {
      type: time ? 'time' : 'value',
      name: time ? 'time' : 'step',
      scale: true,
      ...axis
    },
    yAxis: {
      ...axis,
      type: options.log ? 'log' : 'value',
      scale: true,
      name: metric,
      axisLabel: {
        ...(axis.axisLabel as object),
        formatter: (v: number) => formatNumber(v)
      }
    },
    dataZoom: slider
      ? [
          { type: 'inside', filterMode: 'none' },
          { type: 'slider', height: 16, bottom: 8, filterMode: 'none' }
        ]
      : [{ type: 'inside', filterMode: 'none' }],
    series
  };
}
