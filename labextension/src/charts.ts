/**
 * ECharts for every chart of the panel: loaded on first use (its own chunk), one
 * instance per host element, colours from JupyterLab's theme (light or dark).
 */
import type { ECharts, EChartsCoreOption } from 'echarts/core';

type Module = typeof import('./echartsbundle');

let loading: Promise<Module> | null = null;

/** The ECharts module, fetched once on first use. */
export function loadECharts(): Promise<Module> {
  if (loading === null) {
    loading = import('./echartsbundle');
  }
  return loading;
}

/** Forget a load that failed, so the next chart tries the chunk again. */
export function resetECharts(): void {
  loading = null;
}

/** Read a JupyterLab CSS variable (`--jp-ui-font-color1`) at draw time: the theme may have changed. */
export function themeColor(name: string, fallback: string): string {
  const value = getComputedStyle(document.body).getPropertyValue(name).trim();
  return value || fallback;
}

/**
 * Series colours, the one palette of every chart of the panel: JupyterLab's
 * brand, warn, success, error and accent colours, then lighter brand, warn and
 * success shades; read from the theme (light or dark) at draw time.
 */
export function palette(): string[] {
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

/** Axis and text styling every chart shares. */
export function baseOption(): EChartsCoreOption {
  const text = themeColor('--jp-ui-font-color1', '#333');
  const muted = themeColor('--jp-ui-font-color2', '#777');
  return {
    animation: false,
    color: palette(),
    textStyle: {
      color: text,
      fontFamily: themeColor('--jp-ui-font-family', 'sans-serif'),
      fontSize: 11
    },
    tooltip: {
      backgroundColor: themeColor('--jp-layout-color1', '#fff'),
      borderColor: themeColor('--jp-border-color1', '#ccc'),
      textStyle: { color: text, fontSize: 11 }
    },
    legend: { textStyle: { color: muted }, type: 'scroll', top: 0 }
  };
}

/** Axis style (lines, labels, split lines) from the theme. */
export function axisStyle(): { [key: string]: unknown } {
  const line = themeColor('--jp-border-color1', '#bbb');
  return {
    axisLine: { lineStyle: { color: line } },
    axisLabel: { color: themeColor('--jp-ui-font-color2', '#666') },
    splitLine: {
      lineStyle: { color: themeColor('--jp-border-color3', '#eee') }
    },
    nameTextStyle: { color: themeColor('--jp-ui-font-color2', '#666') }
  };
}

/** The chart of `host`, created on first use (ECharts keeps one per element). */
export async function chartOn(host: HTMLElement): Promise<ECharts> {
  const { echarts } = await loadECharts();
  return (
    echarts.getInstanceByDom(host) ??
    echarts.init(host, undefined, { renderer: 'canvas' })
  );
}

/** Free the chart of `host`, if any. */
export async function disposeChart(host: HTMLElement): Promise<void> {
  if (loading === null) {
    return;
  }
  const { echarts } = await loading;
  echarts.getInstanceByDom(host)?.dispose();
}
