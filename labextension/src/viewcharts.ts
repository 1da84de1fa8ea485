/**
 * Charts of the run views: ECharts loaded on first use, sized to their box, in
 * JupyterLab's theme colours, and disposed with the view that made them.
 */
import type { EChartsCoreOption, EChartsType } from 'echarts/core';

import { loadECharts, resetECharts, themeColor } from './charts';

export { themeColor };

/** Series colours from JupyterLab's theme, in order. */
export function seriesColors(): string[] {
  return [
    themeColor('--jp-brand-color1', '#1976d2'),
    themeColor('--jp-warn-color1', '#f57c00'),
    themeColor('--jp-success-color1', '#388e3c'),
    themeColor('--jp-error-color1', '#d32f2f'),
    themeColor('--jp-accent-color1', '#00838f'),
    themeColor('--jp-brand-color3', '#90caf9'),
    themeColor('--jp-warn-color3', '#ffcc80'),
    themeColor('--jp-success-color3', '#a5d6a7')
  ];
}

/** The text, line and background colours of axes and tooltips in the current theme. */
export function baseOption(): EChartsCoreOption {
  const text = themeColor('--jp-ui-font-color1', '#333');
  const muted = themeColor('--jp-ui-font-color2', '#666');
  const border = themeColor('--jp-border-color2', '#ccc');
  const background = themeColor('--jp-layout-color1', '#fff');
  return {
    color: seriesColors(),
    textStyle: {
      color: text,
      fontFamily: themeColor('--jp-ui-font-family', '')
    },
    tooltip: {
      backgroundColor: background,
      borderColor: border,
      textStyle: { color: text }
    },
    legend: { textStyle: { color: muted } },
    animation: false
  };
}

/** Charts made by one view, disposed together (before a re-render, with the view). */
export class ChartSet {
  /**
   * Draw `option` into `host` once ECharts is loaded; resolves to the chart (or
   * null when the set was cleared meanwhile, e.g. the view re-rendered).
   */
  async mount(
    host: HTMLElement,
    option: EChartsCoreOption
  ): Promise<EChartsType | null> {
    const generation = this._generation;
    let charts: Awaited<ReturnType<typeof loadECharts>>;
    try {
      charts = await loadECharts();
    } catch (error) {
      // A chunk that fails to load (server gone, stale page) costs the chart only.
      resetECharts();
      host.textContent = `The chart could not load: ${String(error)}`;
      return null;
    }
    if (generation !== this._generation) {
      return null;
    }
    const chart = charts.echarts.init(host, null, { renderer: 'canvas' });
    chart.setOption({ ...baseOption(), ...option });
    const observer = new ResizeObserver(() => chart.resize());
    observer.observe(host);
    this._charts.push({ chart, observer });
    return chart;
  }

  /** Dispose every chart of the set. */
  clear(): void {
    this._generation += 1;
    for (const { chart, observer } of this._charts) {
      observer.disconnect();
      chart.dispose();
    }
    this._charts = [];
  }

  private _charts: { chart: EChartsType; observer: ResizeObserver }[] = [];
  private _generation = 0;
}
