/**
 * Charts of the run views: ECharts loaded on first use, sized to their box, in
 * the panel's one theme and palette (charts.ts), and disposed with the view that made them.
 */
import type { EChartsCoreOption, EChartsType } from 'echarts/core';

import { baseOption, loadECharts, resetECharts } from './charts';

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
