/**
 * The run detail view: metric curves (several runs overlaid, drawn with ECharts
 * as the Runs tab draws them), and for one run
 * everything recorded about it: outcome, params, metrics, data, code, environment.
 */
import { CommandRegistry } from '@lumino/commands';

import { IRun } from './api';
import { XAxisMode } from './comparemodel';
import { curveOption } from './curvechart';
import { RunDetailModel } from './detailmodel';
import { h } from './dom';
import { FetchView } from './fetchview';
import {
  formatDuration,
  formatLocation,
  formatTime,
  formatValue,
  runLabel,
  shortId
} from './format';
import { ImagesModel } from './imagesmodel';
import { ImagesView } from './imagesview';
import { LineageModel } from './lineagemodel';
import { LineageView } from './lineageview';
import { systemSection } from './sysview';
import { CommandIDs } from './tokens';
import { ChartSet } from './viewcharts';

export namespace RunDetailView {
  export interface IOptions {
    /** The runs to show; the view owns it. */
    model: RunDetailModel;
    commands: CommandRegistry;
  }
}

/** Metric charts of one or more runs, with the full record of a single run. */
export class RunDetailView extends FetchView<RunDetailModel> {
  constructor(options: RunDetailView.IOptions) {
    super(options.model, 'Loading…');
    this.addClass('nbtrack-detail');
    this._commands = options.commands;
  }

  protected renderContent(): (HTMLElement | string)[] {
    const model = this.model;
    const runs = model.runs;
    const single = runs.length === 1 ? runs[0] : null;
    return [
      h(
        'header',
        { className: 'nbtrack-diff-header' },
        h(
          'h2',
          {},
          single ? 'Run ' : `Metric curves of ${runs.length} runs: `,
          runs.map((run, index) =>
            h(
              'span',
              { className: `nbtrack-run-chip nbtrack-run-${index}` },
              runLabel(run)
            )
          )
        ),
        single ? this._actions(single) : ''
      ),
      this._charts(),
      ...(single ? this._runViews(single) : []),
      single ? this._record(single) : ''
    ];
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._sysCharts.clear();
    this._curveCharts.clear();
    this._lineage?.dispose();
    this._images?.dispose();
    super.dispose();
  }

  /** System metrics, lineage and images of one run (views made once, kept across renders). */
  private _runViews(run: IRun): HTMLElement[] {
    const path = this.model.path;
    this._lineage =
      this._lineage ??
      new LineageView({
        model: new LineageModel({ path, runId: run.run_id }),
        commands: this._commands
      });
    this._images =
      this._images ??
      new ImagesView(new ImagesModel({ path, runId: run.run_id }));
    this._sysCharts.clear();
    const section = (
      name: string,
      title: string,
      body: HTMLElement
    ): HTMLElement =>
      h(
        'section',
        { className: 'nbtrack-diff-section', 'data-section': name },
        h('h3', {}, title),
        body
      );
    return [
      systemSection(
        this.model.series[0] ?? { run_id: run.run_id, series: {} },
        this._sysCharts
      ),
      section('lineage', 'Lineage', this._lineage.node),
      section('images', 'Images', this._images.node)
    ];
  }

  private _actions(run: IRun): HTMLElement {
    const open = h(
      'button',
      { className: 'jp-Button jp-mod-styled' },
      'Go to cell'
    );
    open.addEventListener(
      'click',
      () =>
        void this._commands.execute(CommandIDs.openCell, { runId: run.run_id })
    );
    const rerun = h(
      'button',
      { className: 'jp-Button jp-mod-styled jp-mod-accept' },
      'Re-run'
    );
    rerun.addEventListener(
      'click',
      () => void this._commands.execute(CommandIDs.rerun, { runId: run.run_id })
    );
    return h('div', { className: 'nbtrack-detail-actions' }, open, rerun);
  }

  /** One ECharts line chart per metric, the runs overlaid; step or wall time on x. */
  private _charts(): HTMLElement {
    this._curveCharts.clear();
    const keys = this.model.metricKeys;
    const section = h(
      'section',
      { className: 'nbtrack-diff-section', 'data-section': 'charts' },
      h('h3', {}, `Metrics by ${this._xMode === 'time' ? 'wall time' : 'step'}`)
    );
    if (keys.length === 0) {
      section.append(
        h('p', { className: 'nbtrack-same' }, 'No metric was logged.')
      );
      return section;
    }
    const x = h(
      'select',
      { className: 'jp-mod-styled nbtrack-select-x', 'aria-label': 'x axis' },
      h('option', { value: 'step' }, 'Step'),
      h('option', { value: 'time' }, 'Wall time')
    );
    x.value = this._xMode;
    x.addEventListener('change', () => {
      this._xMode = x.value as XAxisMode;
      section.replaceWith(this._charts());
    });
    const grid = h('div', { className: 'nbtrack-charts' });
    for (const key of keys) {
      const drawn = this.model.curves(key, this._xMode);
      const host = h('div', { className: 'nbtrack-curve-host' });
      grid.append(
        h(
          'figure',
          {
            className: 'nbtrack-chart',
            'data-metric': key,
            'data-runs': drawn.filter(c => c.points.length).length
          },
          h('figcaption', { className: 'nbtrack-chart-title' }, key),
          host
        )
      );
      void this._curveCharts.mount(
        host,
        curveOption(key, drawn, { x: this._xMode })
      );
    }
    section.append(h('label', { className: 'nbtrack-control' }, 'x ', x), grid);
    return section;
  }

  private _record(run: IRun): HTMLElement {
    const facts: [string, string][] = [
      ['Run id', run.run_id],
      ['Status', run.error ? `${run.status}: ${run.error}` : run.status],
      [
        'Notebook / cell',
        `${run.notebook_path ?? ''} ${formatLocation(run).split(' ').slice(1).join(' ')}`
      ],
      ['Started', formatTime(run.started_at)],
      ['Duration', formatDuration(run.duration)],
      [
        'Git',
        run.git_commit
          ? `${run.git_commit.slice(0, 10)}${run.git_dirty ? ' (dirty)' : ''}`
          : ''
      ],
      [
        'Python',
        run.environment
          ? `${run.environment.python} · ${run.environment.platform}`
          : ''
      ],
      ['Re-run of', run.rerun_of ? shortId(run.rerun_of) : ''],
      ['Notebook run', run.parent_id ? shortId(run.parent_id) : '']
    ];
    const table = (rows: [string, string][]): HTMLElement =>
      h(
        'table',
        { className: 'nbtrack-diff-table' },
        h(
          'tbody',
          {},
          rows.map(([key, value]) =>
            h('tr', {}, h('th', { scope: 'row' }, key), h('td', {}, value))
          )
        )
      );
    return h(
      'div',
      {},
      h(
        'section',
        { className: 'nbtrack-diff-section', 'data-section': 'run' },
        h('h3', {}, 'Run'),
        table(facts.filter(([, value]) => value.trim() !== ''))
      ),
      h(
        'section',
        { className: 'nbtrack-diff-section', 'data-section': 'params' },
        h('h3', {}, 'Parameters'),
        table(
          Object.entries(run.params).map(([key, value]) => [
            key,
            `${formatValue(value)}${run.param_sources[key] ? `  (${run.param_sources[key]})` : ''}`
          ])
        )
      ),
      h(
        'section',
        { className: 'nbtrack-diff-section', 'data-section': 'metrics' },
        h('h3', {}, 'Metrics (latest)'),
        table(
          Object.entries(run.metrics).map(([key, value]) => [
            key,
            formatValue(value)
          ])
        )
      ),
      h(
        'section',
        { className: 'nbtrack-diff-section', 'data-section': 'data' },
        h('h3', {}, 'Data'),
        run.data.length
          ? table(
              run.data.map(version => [
                `${version.role} ${version.path}`,
                `${version.hash ?? ''}${version.size !== null ? ` · ${version.size.toLocaleString()} B` : ''}${version.cached ? ' · cached' : ''}`
              ])
            )
          : h('p', { className: 'nbtrack-same' }, 'No data recorded.')
      ),
      run.source
        ? h(
            'section',
            { className: 'nbtrack-diff-section', 'data-section': 'code' },
            h('h3', {}, 'Code'),
            h('pre', { className: 'nbtrack-code-diff' }, run.source)
          )
        : null
    );
  }

  private _commands: CommandRegistry;
  private _lineage: LineageView | null = null;
  private _images: ImagesView | null = null;
  private _sysCharts = new ChartSet();
  private _curveCharts = new ChartSet();
  private _xMode: XAxisMode = 'step';
}
