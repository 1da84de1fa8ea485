/**
 * The left-sidebar panel: toolbar, filters, the runs table and the actions on
 * the selected runs. It renders the model; commands do the work.
 */
import {
  Toolbar,
  ToolbarButton,
  refreshIcon,
  tableRowsIcon,
  searchIcon
} from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { Message } from '@lumino/messaging';
import { Panel, Widget } from '@lumino/widgets';

import { IJob, IRerunResult, IRunSummary, RunKind } from './api';
import { h } from './dom';
import { formatValue } from './format';
import { RunsModel } from './model';
import { RunsTable } from './table';
import { runsIcon } from './icons';
import { CommandIDs } from './tokens';

/** Milliseconds the text filter waits for typing to pause. */
const TEXT_DEBOUNCE = 250;

export namespace RunsPanel {
  export interface IOptions {
    model: RunsModel;
    commands: CommandRegistry;
  }
}

/** The nbtrack runs panel. */
export class RunsPanel extends Panel {
  constructor(options: RunsPanel.IOptions) {
    super();
    this.id = 'nbtrack-runs';
    this.addClass('nbtrack-panel');
    this.title.icon = runsIcon;
    this.title.caption = 'nbtrack runs';
    this._model = options.model;
    this._commands = options.commands;

    const toolbar = new Toolbar();
    toolbar.addClass('nbtrack-toolbar');
    toolbar.addItem(
      'title',
      new Widget({ node: h('span', { className: 'nbtrack-title' }, 'Runs') })
    );
    toolbar.addItem('spacer', Toolbar.createSpacerItem());
    toolbar.addItem(
      'columns',
      new ToolbarButton({
        icon: tableRowsIcon,
        tooltip: 'Choose the param and metric columns',
        onClick: () => void this._commands.execute(CommandIDs.chooseColumns)
      })
    );
    toolbar.addItem(
      'refresh',
      new ToolbarButton({
        icon: refreshIcon,
        tooltip: 'Refresh the runs',
        onClick: () => void this._commands.execute(CommandIDs.refresh)
      })
    );
    this.addWidget(toolbar);

    this.addWidget(new Widget({ node: this._buildFilters() }));
    this._info = h('div', { className: 'nbtrack-info' });
    this._errorBox = h('div', { className: 'nbtrack-error', role: 'alert' });
    this.addWidget(
      new Widget({ node: h('div', {}, this._info, this._errorBox) })
    );

    this._table = new RunsTable({
      model: this._model,
      onOpenCell: run => this._openCell(run),
      onOpenRun: run => {
        this._model.selectOnly(run.run_id);
        void this._commands.execute(CommandIDs.showDetails);
      }
    });
    this.addWidget(this._table);

    this._actions = h('div', { className: 'nbtrack-actions' });
    this.addWidget(new Widget({ node: this._actions }));

    this._model.changed.connect(this._update, this);
    this._update();
  }

  get model(): RunsModel {
    return this._model;
  }

  dispose(): void {
    this._model.changed.disconnect(this._update, this);
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._model.setVisible(true);
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._model.setVisible(false);
  }

  private _buildFilters(): HTMLElement {
    const text = h('input', {
      type: 'search',
      className: 'jp-mod-styled nbtrack-filter-text',
      placeholder: 'Filter: name, id, notebook, param…',
      'aria-label': 'Filter runs by text'
    });
    let timer = 0;
    text.addEventListener('input', () => {
      window.clearTimeout(timer);
      timer = window.setTimeout(
        () => this._model.setQuery({ text: text.value.trim() }),
        TEXT_DEBOUNCE
      );
    });
    const where = h('input', {
      type: 'text',
      className: 'jp-mod-styled nbtrack-filter-where',
      placeholder: 'Condition: lr < 0.1 and acc > 0.9',
      title: 'A SQL condition over params and metrics; Enter applies it',
      'aria-label': 'Filter runs by condition'
    });
    where.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        this._model.setQuery({ where: where.value.trim() });
      }
    });
    where.addEventListener('change', () =>
      this._model.setQuery({ where: where.value.trim() })
    );
    const kind = h(
      'select',
      {
        className: 'jp-mod-styled nbtrack-filter-kind',
        'aria-label': 'Which runs'
      },
      h('option', { value: 'cell' }, 'Cell runs'),
      h('option', { value: 'notebook' }, 'Notebook runs'),
      h('option', { value: 'all' }, 'All runs')
    );
    kind.addEventListener('change', () =>
      this._model.setKind(kind.value as RunKind | 'all')
    );
    const icon = searchIcon.element({ className: 'nbtrack-filter-icon' });
    return h(
      'div',
      { className: 'nbtrack-filters' },
      h('div', { className: 'nbtrack-filter-row' }, icon, text, kind),
      h('div', { className: 'nbtrack-filter-row' }, where)
    );
  }

  private _update(): void {
    const model = this._model;
    const status = model.status;
    const location = status
      ? status.project_path === null
        ? status.project_root
        : `${status.project_path || '.'}/.nbtrack`
      : '';
    this._info.textContent = status
      ? `${model.total.toLocaleString()} run${model.total === 1 ? '' : 's'} · ${location}`
      : '';
    this._info.title = status ? status.store_path : '';
    this._errorBox.textContent = model.error ?? '';
    this._errorBox.hidden = model.error === null;
    this._renderActions();
  }

  private _renderActions(): void {
    const selection = this._model.selection;
    const count = selection.length;
    const job = count === 1 ? this._model.jobs.get(selection[0]) : undefined;
    const compare = this._button(
      count > 2 ? `Compare ${count}` : 'Diff',
      'Show what differs between the selected runs',
      count >= 2,
      CommandIDs.compareSelected,
      'nbtrack-action-diff'
    );
    const details = this._button(
      count > 1 ? `Charts ${count}` : 'Details',
      'Show the metric curves (and details) of the selected runs',
      count >= 1,
      CommandIDs.showDetails,
      'nbtrack-action-details'
    );
    const rerun = this._button(
      job && (job.state === 'queued' || job.state === 'running')
        ? 'Re-running…'
        : 'Re-run',
      'Execute the notebook of this run again with its parameters',
      count === 1 && this._model.status?.rerun_available === true,
      CommandIDs.rerunSelected,
      'nbtrack-action-rerun'
    );
    const note = h(
      'span',
      { className: 'nbtrack-selection' },
      count ? `${count} selected` : 'Select runs to compare'
    );
    const clear = h(
      'button',
      {
        className: 'jp-Button jp-mod-minimal nbtrack-clear',
        title: 'Clear the selection',
        disabled: count === 0
      },
      '×'
    );
    clear.addEventListener('click', () => this._model.clearSelection());
    const jobLine = job ? this._jobLine(job) : null;
    this._actions.replaceChildren(
      h('div', { className: 'nbtrack-action-row' }, note, clear),
      h('div', { className: 'nbtrack-action-row' }, compare, details, rerun),
      jobLine ?? ''
    );
  }

  private _jobLine(job: IJob): HTMLElement {
    const line = h('div', {
      className: `nbtrack-job nbtrack-job-${job.state}`
    });
    const result = job.result;
    if (job.state === 'finished' && result) {
      line.append(
        `Re-run finished: run ${result.run_id.slice(0, 8)}, ${
          result.reproduced ? 'reproduced' : 'did not reproduce'
        }`
      );
      const reasons = [...verdictLines(result), ...result.warnings];
      if (reasons.length) {
        line.appendChild(
          h(
            'ul',
            { className: 'nbtrack-job-reasons' },
            reasons.map(text => h('li', {}, text))
          )
        );
      }
    } else if (job.state === 'failed' && job.error) {
      line.append(`Re-run failed: ${job.error.message}`);
    } else {
      line.append(`Re-run ${job.state}…`);
    }
    return line;
  }

  private _button(
    label: string,
    title: string,
    enabled: boolean,
    command: string,
    className: string
  ): HTMLButtonElement {
    const button = h(
      'button',
      {
        className: `jp-Button jp-mod-styled ${enabled ? 'jp-mod-accept' : ''} ${className}`,
        title,
        disabled: !enabled
      },
      label
    );
    button.addEventListener(
      'click',
      () => void this._commands.execute(command)
    );
    return button;
  }

  private _openCell(run: IRunSummary): void {
    void this._commands.execute(CommandIDs.openCell, { runId: run.run_id });
  }

  private _model: RunsModel;
  private _commands: CommandRegistry;
  private _info: HTMLElement;
  private _errorBox: HTMLElement;
  private _table: RunsTable;
  private _actions: HTMLElement;
}

/** Why a re-run did not reproduce, one line per thing that moved. */
export function verdictLines(result: IRerunResult): string[] {
  const verdict = result.verdict;
  if (!verdict) {
    return [];
  }
  return [
    ...verdict.outcomes.map(
      o =>
        `cell ${o.cell}: ${o.before} → ${o.after ?? 'did not run'}${o.error ? ` (${o.error})` : ''}`
    ),
    ...verdict.metrics.map(
      m => `${m.key}: ${formatValue(m.before)} → ${formatValue(m.after)}`
    ),
    ...[...verdict.outputs, ...verdict.inputs].map(
      d => `${d.path}: ${d.change}`
    )
  ];
}
