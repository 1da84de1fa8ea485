/**
 * The comparison views under the Runs tab's table: parameter-vs-metric scatter,
 * parallel coordinates (brushing filters the table), scalar bars and metric
 * curves of the selected runs (grouping is the table's: groupstate.ts).
 * View rules live in comparemodel.ts; this module only draws them with ECharts.
 */
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';
import type { ECharts } from 'echarts/core';

import { IRunSummary } from './api';
import {
  axisStyle,
  baseOption,
  chartOn,
  disposeChart,
  palette
} from './charts';
import {
  Brushes,
  IParallelData,
  XAxisMode,
  barGroups,
  curves,
  isSystemMetric,
  parallelData,
  parseValueKey,
  scatterPoints,
  splitVarying
} from './comparemodel';
import { CompareState } from './comparestate';
import { curveOption } from './curvechart';
import { h } from './dom';
import { formatNumber, formatValue } from './format';

export type CompareKind = 'scatter' | 'parallel' | 'bars' | 'curves';

const VIEWS: [CompareKind, string][] = [
  ['parallel', 'Parallel coordinates'],
  ['scatter', 'Scatter'],
  ['bars', 'Scalar bars'],
  ['curves', 'Curves']
];

/** Most parameter axes the parallel coordinates draw. */
const MAX_AXES = 10;

/** Where the page records how long a brush took to reach the table (read by benchmarks/bench_panel.py). */
export const BRUSH_MEASURE = 'nbtrack-brush';

/** The comparison views of the Runs tab. */
export class CompareView extends Widget {
  constructor(state: CompareState) {
    super();
    this.addClass('nbtrack-compare');
    this._state = state;
    this._tabs = h('div', {
      className: 'nbtrack-compare-tabs',
      role: 'tablist'
    });
    this._controls = h('div', { className: 'nbtrack-compare-controls' });
    this._note = h('div', { className: 'nbtrack-compare-note' });
    this._body = h('div', { className: 'nbtrack-compare-body' });
    this.node.append(this._tabs, this._controls, this._note, this._body);
    this._renderTabs();
    state.changed.connect(this._onRuns, this);
    state.model.changed.connect(this._onModel, this);
  }

  get kind(): CompareKind {
    return this._kind;
  }

  /** Show another view. */
  showView(kind: CompareKind): void {
    this._kind = kind;
    this._renderTabs();
    void this._render();
  }

  dispose(): void {
    this._state.changed.disconnect(this._onRuns, this);
    this._state.model.changed.disconnect(this._onModel, this);
    void this._clearCharts();
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this._render();
  }

  protected onResize(msg: Widget.ResizeMessage): void {
    super.onResize(msg);
    this._charts.forEach(chart => chart.resize());
  }

  private _onRuns(): void {
    void this._render();
  }

  private _onModel(): void {
    const selection = this._state.model.selection.join(',');
    if (selection !== this._selection) {
      this._selection = selection;
      if (this._kind === 'bars' || this._kind === 'curves') {
        void this._render();
      }
    }
  }

  private _renderTabs(): void {
    this._tabs.replaceChildren(
      ...VIEWS.map(([kind, label]) => {
        const tab = h(
          'button',
          {
            className: `jp-Button jp-mod-minimal nbtrack-compare-tab${kind === this._kind ? ' jp-mod-active' : ''}`,
            role: 'tab',
            'aria-selected': kind === this._kind ? 'true' : 'false',
            'data-view': kind
          },
          label
        );
        tab.addEventListener('click', () => this.showView(kind));
        return tab;
      })
    );
  }

  private async _clearCharts(): Promise<void> {
    const hosts = [...this._hosts];
    this._charts = [];
    this._hosts = [];
    await Promise.all(hosts.map(host => disposeChart(host)));
  }

  /** A chart host in the body, and its chart. */
  private async _chart(className = 'nbtrack-chart-host'): Promise<ECharts> {
    const host = h('div', { className });
    this._body.appendChild(host);
    this._hosts.push(host);
    const chart = await chartOn(host);
    this._charts.push(chart);
    return chart;
  }

  private async _render(): Promise<void> {
    if (!this.isVisible) {
      return;
    }
    const generation = ++this._generation;
    await this._clearCharts();
    if (generation !== this._generation) {
      return;
    }
    this._body.replaceChildren();
    this._controls.replaceChildren();
    this._note.textContent = '';
    this.node.dataset.view = this._kind;
    const state = this._state;
    if (state.error) {
      this._note.textContent = state.error;
      return;
    }
    const needsRuns = this._kind !== 'bars' && this._kind !== 'curves';
    if (needsRuns && state.loading && state.runs.length === 0) {
      this._note.textContent = 'Loading runs…';
      return;
    }
    switch (this._kind) {
      case 'scatter':
        return this._scatter(generation);
      case 'parallel':
        return this._parallel(generation);
      case 'bars':
        return this._bars(generation);
      case 'curves':
        return this._curves(generation);
    }
  }

  private _truncation(): string {
    const state = this._state;
    return state.truncated
      ? `The newest ${state.runs.length.toLocaleString()} of ${state.total.toLocaleString()} runs.`
      : '';
  }

  // ---------------------------------------------------------------- scatter
  private async _scatter(generation: number): Promise<void> {
    const runs = this._state.runs;
    const params = splitVarying(runs, 'params');
    const metrics = splitVarying(runs, 'metrics');
    const options = [
      ...[...params.varying, ...params.constant].map(k => `params.${k}`),
      ...[...metrics.varying, ...metrics.constant].map(k => `metrics.${k}`)
    ];
    if (options.length === 0) {
      this._note.textContent = 'No parameter or metric to plot yet.';
      return;
    }
    this._scatterX ??= options[0];
    this._scatterY ??=
      options.find(
        o => o.startsWith('metrics.') && !isSystemMetric(o.slice(8))
      ) ?? options[options.length - 1];
    this._controls.append(
      this._select('x', options, this._scatterX, v => {
        this._scatterX = v;
        void this._render();
      }),
      this._select('y', options, this._scatterY, v => {
        this._scatterY = v;
        void this._render();
      })
    );
    const { points, categorical } = scatterPoints(
      runs,
      parseValueKey(this._scatterX),
      parseValueKey(this._scatterY),
      run => this._state.labelOf(run)
    );
    this._note.textContent = `${points.length.toLocaleString()} runs. ${this._truncation()} Click a point to select its run.`;
    const chart = await this._chart();
    if (generation !== this._generation) {
      return;
    }
    const selected = new Set(this._state.model.selection);
    const xLabel = parseValueKey(this._scatterX).key;
    const yLabel = parseValueKey(this._scatterY).key;
    chart.setOption({
      ...baseOption(),
      grid: { left: 60, right: 30, top: 20, bottom: 40 },
      tooltip: {
        ...(baseOption().tooltip as object),
        trigger: 'item',
        formatter: (p: {
          data: { name: string; value: [number | string, number] };
        }) =>
          `${p.data.name}<br>${xLabel} = ${formatValue(p.data.value[0])}<br>${yLabel} = ${formatNumber(p.data.value[1])}`
      },
      xAxis: {
        type: categorical ? 'category' : 'value',
        name: xLabel,
        nameLocation: 'middle',
        nameGap: 24,
        scale: true,
        data: categorical
          ? [...new Set(points.map(p => String(p.x)))].sort()
          : undefined,
        ...axisStyle()
      },
      yAxis: { type: 'value', name: yLabel, scale: true, ...axisStyle() },
      series: [
        {
          type: 'scatter',
          large: points.length > 2000,
          symbolSize: 7,
          data: points.map(p => ({
            name: p.label,
            value: [p.x, p.y],
            runId: p.runId,
            itemStyle: selected.has(p.runId)
              ? { borderColor: palette()[3], borderWidth: 2 }
              : undefined
          }))
        }
      ]
    });
    chart.on('click', params => {
      const data = params.data as { runId?: string } | undefined;
      if (data?.runId) {
        this._state.model.toggleSelected(data.runId);
      }
    });
  }

  // ---------------------------------------------------------------- parallel
  private async _parallel(generation: number): Promise<void> {
    const state = this._state;
    const selected = state.selected;
    const useSelection =
      this._parallelSource === 'selection' && selected.length >= 2;
    const runs = useSelection ? selected : state.runs;
    const params = splitVarying(runs, 'params');
    const axes = (
      params.varying.length ? params.varying : params.constant
    ).slice(0, MAX_AXES);
    const metrics = splitVarying(runs, 'metrics');
    const metricKeys = [...metrics.varying, ...metrics.constant];
    if (metricKeys.length === 0) {
      this._note.textContent = 'No metric logged yet.';
      return;
    }
    if (
      this._parallelMetric === null ||
      !metricKeys.includes(this._parallelMetric)
    ) {
      this._parallelMetric =
        metricKeys.find(k => !isSystemMetric(k)) ?? metricKeys[0];
    }
    this._controls.append(
      this._select(
        'runs',
        ['shown', 'selection'],
        this._parallelSource,
        v => {
          this._parallelSource = v as 'shown' | 'selection';
          void this._render();
        },
        { shown: 'Shown runs', selection: 'Selected runs' }
      ),
      this._select('metric', metricKeys, this._parallelMetric, v => {
        this._parallelMetric = v;
        void this._render();
      })
    );
    const data = parallelData(runs, axes, this._parallelMetric);
    // Drawn anew over the same axes (a run landed, the next page arrived), the chart
    // keeps the user's brush, applied to the new lines; over other axes a brush means
    // nothing, and the table must not stay filtered by one nobody sees.
    const axesKey = JSON.stringify([useSelection, data.axes.map(a => a.label)]);
    const kept: Brushes =
      axesKey === this._parallelAxesKey ? state.brushes : new Map();
    this._parallelAxesKey = axesKey;
    if (kept.size === 0) {
      state.clearBrush();
    }
    this._note.textContent = `${data.runIds.length.toLocaleString()} runs. ${
      useSelection ? '' : this._truncation()
    } Drag along an axis to filter the table; click the axis to clear.`;
    const chart = await this._chart('nbtrack-chart-host nbtrack-parallel');
    if (generation !== this._generation) {
      return;
    }
    chart.setOption({
      ...baseOption(),
      parallel: { left: 50, right: 90, top: 36, bottom: 28 },
      parallelAxis: data.axes.map((axis, dim) => ({
        id: `axis${dim}`,
        dim,
        name: axis.label,
        type: axis.type,
        data: axis.type === 'category' ? axis.categories : undefined,
        scale: true,
        nameTextStyle: {
          fontWeight: dim === data.axes.length - 1 ? 'bold' : 'normal'
        },
        axisLabel: {
          formatter: axis.type === 'value' ? formatNumber : undefined
        },
        areaSelectStyle: { width: 18 },
        ...axisStyle()
      })),
      series: [
        {
          type: 'parallel',
          data: data.rows,
          lineStyle: { width: 1, opacity: data.rows.length > 300 ? 0.3 : 0.7 },
          inactiveOpacity: 0.04,
          activeOpacity: 1,
          progressive: 0
        }
      ]
    });
    chart.on('axisareaselected', params => {
      const event = params as {
        parallelAxisId?: string;
        intervals?: [number, number][];
      };
      this._brush(
        data,
        event.parallelAxisId ?? '',
        event.intervals ?? [],
        runs
      );
    });
    for (const [axis, intervals] of kept) {
      // The action's event brushes the state again, over this chart's data.
      chart.dispatchAction({
        type: 'axisAreaSelect',
        parallelAxisId: `axis${axis}`,
        intervals: intervals.map(([lo, hi]) => [lo, hi])
      });
    }
    // Drawn and listening for brushes (a test waits for this before it drags).
    chart.getDom().dataset.ready = 'true';
  }

  /** One axis brushed: narrow the table to the runs inside every brush, and time it. */
  private _brush(
    data: IParallelData,
    axisId: string,
    intervals: [number, number][],
    runs: IRunSummary[]
  ): void {
    performance.mark(`${BRUSH_MEASURE}-start`);
    const axis = Number(axisId.replace('axis', ''));
    this._state.brush(data, axis, intervals, runs);
    // Our share: the filter, the model and the filter bar (the table draws next frame).
    performance.measure(`${BRUSH_MEASURE}-filter`, `${BRUSH_MEASURE}-start`);
    // The table draws in the next animation frame; measure up to then.
    requestAnimationFrame(() =>
      performance.measure(BRUSH_MEASURE, `${BRUSH_MEASURE}-start`)
    );
  }

  // ---------------------------------------------------------------- bars
  private async _bars(generation: number): Promise<void> {
    const runs = this._state.selected;
    if (runs.length === 0) {
      this._note.textContent =
        'Select runs (check boxes) to compare their metrics side by side.';
      return;
    }
    const groups = barGroups(runs, run => this._state.labelOf(run)).slice(
      0,
      12
    );
    this._note.textContent = `${runs.length} selected runs, one chart per metric.`;
    const colors = palette();
    for (const group of groups) {
      const chart = await this._chart('nbtrack-chart-host nbtrack-bar-host');
      if (generation !== this._generation) {
        return;
      }
      chart.getDom().dataset.metric = group.metric;
      chart.setOption({
        ...baseOption(),
        title: undefined,
        grid: { left: 56, right: 12, top: 26, bottom: 24 },
        tooltip: { ...(baseOption().tooltip as object), trigger: 'item' },
        xAxis: {
          type: 'category',
          data: group.bars.map(b => b.label),
          axisLabel: { show: false },
          ...axisStyle()
        },
        yAxis: {
          type: 'value',
          name: group.metric,
          nameTextStyle: { fontWeight: 'bold', align: 'left' },
          scale: false,
          ...axisStyle()
        },
        series: [
          {
            type: 'bar',
            data: group.bars.map((bar, i) => ({
              value: bar.value,
              name: bar.label,
              itemStyle: { color: colors[i % colors.length] }
            })),
            label: {
              show: true,
              position: 'top',
              formatter: (p: { value: number | null }) =>
                p.value === null ? '' : formatNumber(p.value)
            }
          }
        ]
      });
    }
    this._body.appendChild(
      h(
        'div',
        { className: 'nbtrack-chart-legend' },
        runs.map((run, i) =>
          h(
            'span',
            { className: 'nbtrack-chart-key' },
            h('span', {
              className: 'nbtrack-chart-swatch',
              style: `background: ${colors[i % colors.length]}`
            }),
            this._state.labelOf(run)
          )
        )
      )
    );
  }

  // ---------------------------------------------------------------- curves
  private async _curves(generation: number): Promise<void> {
    const selected = this._state.selected;
    if (selected.length === 0) {
      this._note.textContent =
        'Select runs (check boxes) to overlay their metric curves.';
      return;
    }
    this._note.textContent = 'Loading curves…';
    const loaded = await this._state.seriesOfSelected();
    if (generation !== this._generation) {
      return;
    }
    const keys = [
      ...new Set(loaded.flatMap(l => Object.keys(l.series.series)))
    ].sort((a, b) => Number(isSystemMetric(a)) - Number(isSystemMetric(b)));
    if (keys.length === 0) {
      this._note.textContent = 'The selected runs logged no metric.';
      return;
    }
    if (this._curveMetric === null || !keys.includes(this._curveMetric)) {
      // A series with steps says more than a scalar: prefer the longest.
      const length = (k: string): number =>
        Math.max(...loaded.map(l => l.series.series[k]?.length ?? 0));
      this._curveMetric =
        keys
          .filter(k => !isSystemMetric(k))
          .sort((a, b) => length(b) - length(a))[0] ?? keys[0];
    }
    const smoothing = h('input', {
      type: 'range',
      min: 0,
      max: 0.99,
      step: 0.01,
      value: this._smoothing,
      className: 'nbtrack-smoothing',
      'aria-label': 'Smoothing'
    });
    smoothing.addEventListener('change', () => {
      this._smoothing = Number(smoothing.value);
      void this._render();
    });
    const log = h('input', {
      type: 'checkbox',
      className: 'nbtrack-log',
      'aria-label': 'Log scale'
    });
    log.checked = this._log;
    log.addEventListener('change', () => {
      this._log = log.checked;
      void this._render();
    });
    this._controls.append(
      this._select('metric', keys, this._curveMetric, v => {
        this._curveMetric = v;
        void this._render();
      }),
      this._select(
        'x',
        ['step', 'time'],
        this._xMode,
        v => {
          this._xMode = v as XAxisMode;
          void this._render();
        },
        { step: 'Step', time: 'Wall time' }
      ),
      h(
        'label',
        { className: 'nbtrack-control' },
        'smoothing ',
        smoothing,
        ` ${this._smoothing.toFixed(2)}`
      ),
      h('label', { className: 'nbtrack-control' }, log, ' log scale')
    );
    const metric = this._curveMetric;
    const input = loaded.map(l => ({
      runId: l.run.run_id,
      label: this._state.labelOf(l.run),
      points: l.series.series[metric] ?? []
    }));
    const options = {
      x: this._xMode,
      smoothing: this._smoothing,
      log: this._log
    };
    const drawn = curves(input, options);
    const raw =
      this._smoothing > 0 ? curves(input, { ...options, smoothing: 0 }) : null;
    this._note.textContent =
      `${metric} of ${loaded.length} runs` +
      (drawn.hidden
        ? ` · ${drawn.hidden} value${drawn.hidden === 1 ? '' : 's'} ≤ 0 not drawn on the log scale`
        : '') +
      (selected.length > loaded.length
        ? ` · the first ${loaded.length} selected`
        : '');
    const chart = await this._chart('nbtrack-chart-host nbtrack-curves');
    if (generation !== this._generation) {
      return;
    }
    chart.getDom().dataset.metric = metric;
    chart.setOption(
      curveOption(metric, drawn.curves, {
        x: this._xMode,
        log: this._log,
        raw: raw?.curves,
        slider: true
      })
    );
  }

  private _select(
    name: string,
    options: string[],
    value: string,
    onChange: (value: string) => void,
    labels: { [value: string]: string } = {}
  ): HTMLElement {
    const select = h(
      'select',
      { className: `jp-mod-styled nbtrack-select-${name}`, 'aria-label': name },
      options.map(o => {
        const option = h('option', { value: o }, labels[o] ?? o);
        option.selected = o === value;
        return option;
      })
    );
    select.addEventListener('change', () => onChange(select.value));
    return h('label', { className: 'nbtrack-control' }, `${name} `, select);
  }

  private _state: CompareState;
  private _kind: CompareKind = 'parallel';
  private _tabs: HTMLElement;
  private _controls: HTMLElement;
  private _note: HTMLElement;
  private _body: HTMLElement;
  private _hosts: HTMLElement[] = [];
  private _charts: ECharts[] = [];
  private _generation = 0;
  private _selection = '';
  private _scatterX: string | undefined;
  private _scatterY: string | undefined;
  private _parallelSource: 'shown' | 'selection' = 'shown';
  private _parallelMetric: string | null = null;
  private _parallelAxesKey = '';
  private _curveMetric: string | null = null;
  private _xMode: XAxisMode = 'step';
  private _smoothing = 0;
  private _log = false;
}
