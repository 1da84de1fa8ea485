/**
 * The run detail view: metric curves (several runs overlaid), and for one run
 * everything recorded about it: outcome, params, metrics, data, code, environment.
 */
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { IMetricSeries, IRun, fetchMetrics, fetchRun, toNumber } from './api';
import { ILine, lineChart } from './chart';
import { h } from './dom';
import {
  formatDuration,
  formatLocation,
  formatTime,
  formatValue,
  shortId
} from './format';
import { messageOf } from './model';
import { CommandIDs } from './tokens';

export namespace RunDetailView {
  export interface IOptions {
    path: string;
    runIds: string[];
    commands: CommandRegistry;
  }
}

/** Metric charts of one or more runs, with the full record of a single run. */
export class RunDetailView extends Widget {
  constructor(options: RunDetailView.IOptions) {
    super();
    this.addClass('nbtrack-detail');
    this._path = options.path;
    this._runIds = options.runIds;
    this._commands = options.commands;
    this.node.tabIndex = 0;
    this.node.textContent = 'Loading…';
    void this.load();
  }

  get runIds(): string[] {
    return [...this._runIds];
  }

  async load(): Promise<void> {
    try {
      const [runs, series] = await Promise.all([
        Promise.all(this._runIds.map(id => fetchRun(this._path, id))),
        Promise.all(this._runIds.map(id => fetchMetrics(this._path, id)))
      ]);
      this._runs = runs;
      this._series = series;
      this._error = null;
    } catch (error) {
      this._error = messageOf(error);
    }
    this.render();
  }

  render(): void {
    if (this._error !== null) {
      this.node.replaceChildren(
        h('div', { className: 'nbtrack-error', role: 'alert' }, this._error)
      );
      return;
    }
    const runs = this._runs;
    const single = runs.length === 1 ? runs[0] : null;
    this.node.replaceChildren(
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
              label(run)
            )
          )
        ),
        single ? this._actions(single) : ''
      ),
      this._charts(),
      single ? this._record(single) : ''
    );
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

  private _charts(): HTMLElement {
    const keys: string[] = [];
    for (const series of this._series) {
      for (const key of Object.keys(series.series)) {
        if (!keys.includes(key)) {
          keys.push(key);
        }
      }
    }
    keys.sort();
    const charts = keys.map(key => {
      const lines: ILine[] = this._series.map((series, index) => ({
        label: label(this._runs[index]),
        points: (series.series[key] ?? []).map(
          (point, position): [number, number] => [
            point.step ?? position,
            toNumber(point.value)
          ]
        )
      }));
      return lineChart(key, lines);
    });
    return h(
      'section',
      { className: 'nbtrack-diff-section', 'data-section': 'charts' },
      h('h3', {}, 'Metrics by step'),
      charts.length
        ? h('div', { className: 'nbtrack-charts' }, charts)
        : h('p', { className: 'nbtrack-same' }, 'No metric was logged.')
    );
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

  private _path: string;
  private _runIds: string[];
  private _commands: CommandRegistry;
  private _runs: IRun[] = [];
  private _series: IMetricSeries[] = [];
  private _error: string | null = null;
}

function label(run: IRun): string {
  return run.name ? `${run.name} ${shortId(run.run_id)}` : shortId(run.run_id);
}
