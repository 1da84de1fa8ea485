/**
 * The left-sidebar panel: toolbar, filters, the runs table and the actions on
 * the selected runs. It renders the model; commands do the work.
 */
import {
  Toolbar,
  ToolbarButton,
  launchIcon,
  refreshIcon,
  tableRowsIcon
} from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { Message } from '@lumino/messaging';
import { Panel, SplitPanel, Widget } from '@lumino/widgets';

import { IJob, IRerunResult, IRunSummary } from './api';
import { loadECharts } from './charts';
import { CompareState } from './comparestate';
import { CompareView } from './compareview';
import { buildFilters } from './filters';
import { h } from './dom';
import { formatValue } from './format';
import { GroupBy, SummaryStat } from './groupmodel';
import { RunGroupsState } from './groupstate';
import { RunsModel } from './model';
import { RunsTable } from './table';
import { runsIcon } from './icons';
import { CommandIDs } from './tokens';

export namespace RunsPanel {
  export interface IOptions {
    model: RunsModel;
    commands: CommandRegistry;
    /** The sidebar's compact list (default), or the Runs tab's full table and charts. */
    variant?: 'sidebar' | 'tab';
  }
}

/** The performance mark the Runs tab sets when its first rows are drawn (benchmarks/bench_panel.py). */
export const TAB_PAINT_MARK = 'nbtrack-runs-tab-paint';

/** The nbtrack runs panel. */
export class RunsPanel extends Panel {
  constructor(options: RunsPanel.IOptions) {
    super();
    const tab = options.variant === 'tab';
    this._isTab = tab;
    this.id = tab ? 'nbtrack-runs-tab-content' : 'nbtrack-runs';
    this.addClass('nbtrack-panel');
    this.addClass(tab ? 'nbtrack-mod-tab' : 'nbtrack-mod-sidebar');
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
    if (!tab) {
      toolbar.addItem(
        'open-tab',
        new ToolbarButton({
          icon: launchIcon,
          label: 'Open tab',
          tooltip:
            'Open the Runs tab: the full table and the comparison charts',
          className: 'nbtrack-open-tab',
          onClick: () => void this._commands.execute(CommandIDs.openRunsTab)
        })
      );
      toolbar.addItem(
        'models',
        new ToolbarButton({
          label: 'Models',
          tooltip: 'Open the Models view: registered models, versions, aliases',
          className: 'nbtrack-open-models',
          onClick: () => void this._commands.execute(CommandIDs.openModels)
        })
      );
      toolbar.addItem(
        'drift',
        new ToolbarButton({
          label: 'Drift',
          tooltip: 'Open the drift view of a data file',
          className: 'nbtrack-open-drift',
          onClick: () => void this._commands.execute(CommandIDs.openDrift)
        })
      );
    }
    toolbar.addItem(
      'columns',
      new ToolbarButton({
        icon: tableRowsIcon,
        tooltip: 'Choose the param and metric columns',
        onClick: () =>
          void this._commands.execute(CommandIDs.chooseColumns, { tab })
      })
    );
    toolbar.addItem(
      'refresh',
      new ToolbarButton({
        icon: refreshIcon,
        tooltip: 'Refresh the runs',
        onClick: () => void this._commands.execute(CommandIDs.refresh, { tab })
      })
    );
    this.addWidget(toolbar);

    if (tab) {
      this._groups = new RunGroupsState(this._model);
    }
    const filters = buildFilters(
      this._model,
      this._groups ? this._groupControls(this._groups) : undefined
    );
    this._updateFilters = filters.update;
    this.addWidget(new Widget({ node: filters.node }));
    this._info = h('div', { className: 'nbtrack-info' });
    this._errorBox = h('div', { className: 'nbtrack-error', role: 'alert' });
    this.addWidget(
      new Widget({ node: h('div', {}, this._info, this._errorBox) })
    );

    this._table = new RunsTable({
      model: this._model,
      groups: this._groups ?? undefined,
      onOpenCell: run => this._openCell(run),
      compact: !tab,
      paintMark: tab ? TAB_PAINT_MARK : undefined,
      // The charts fetch their runs once the table has drawn its first rows.
      // ECharts' chunk is fetched then too, so the first chart does not wait for it.
      onFirstPaint: () => {
        this._compare?.activate();
        void loadECharts();
      },
      onOpenRun: run => {
        this._model.selectOnly(run.run_id);
        void this._commands.execute(CommandIDs.showDetails, {
          tab: this._isTab
        });
      }
    });
    if (tab) {
      // The table above, the comparison charts below; the user drags the split.
      const split = new SplitPanel({ orientation: 'vertical', spacing: 4 });
      split.addClass('nbtrack-split');
      this._compare = new CompareState(this._model);
      split.addWidget(this._table);
      split.addWidget(new CompareView(this._compare));
      split.setRelativeSizes([0.45, 0.55]);
      this.addWidget(split);
    } else {
      this.addWidget(this._table);
    }

    this._actions = h('div', { className: 'nbtrack-actions' });
    this.addWidget(new Widget({ node: this._actions }));

    this._model.changed.connect(this._update, this);
    this._update();
  }

  get model(): RunsModel {
    return this._model;
  }

  dispose(): void {
    this._compare?.dispose();
    this._groups?.dispose();
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

  private _update(): void {
    const model = this._model;
    const status = model.status;
    const location = status
      ? status.project_path === null
        ? status.project_root
        : `${status.project_path || '.'}/.nbtrack`
      : '';
    this._info.textContent = status
      ? `${model.isLocallyFiltered ? `${model.total.toLocaleString()} of ` : ''}${model.serverTotal.toLocaleString()} run${model.serverTotal === 1 ? '' : 's'} · ${location}`
      : '';
    this._info.title = status ? status.store_path : '';
    this._updateFilters();
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
        `Re-run finished: run ${(result.shown_run_id ?? result.run_id).slice(0, 8)}, ${
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
      () => void this._commands.execute(command, { tab: this._isTab })
    );
    return button;
  }

  private _openCell(run: IRunSummary): void {
    void this._commands.execute(CommandIDs.openCell, {
      runId: run.run_id,
      tab: this._isTab
    });
  }

  /** "Group by" and the figure group rows show for each metric, with a note on the grouping. */
  private _groupControls(groups: RunGroupsState): HTMLElement {
    const select = (
      name: string,
      label: string,
      options: [string, string][],
      value: string,
      onChange: (value: string) => void
    ): { node: HTMLElement; select: HTMLSelectElement } => {
      const node = h(
        'select',
        { className: `jp-mod-styled nbtrack-${name}`, 'aria-label': label },
        options.map(([v, text]) => h('option', { value: v }, text))
      );
      node.value = value;
      node.addEventListener('change', () => onChange(node.value));
      return {
        node: h('label', { className: 'nbtrack-control' }, `${label} `, node),
        select: node
      };
    };
    const by = select(
      'group-by',
      'Group by',
      [
        ['none', 'None'],
        ['parent', 'Notebook run'],
        ['sweep', 'Sweep']
      ],
      groups.by,
      v => groups.setBy(v as GroupBy)
    );
    const stat = select(
      'group-stat',
      'Metrics as',
      [
        ['max', 'max'],
        ['min', 'min'],
        ['last', 'last']
      ],
      groups.stat,
      v => groups.setStat(v as SummaryStat)
    );
    const note = h('span', { className: 'nbtrack-group-note' });
    const update = (): void => {
      by.select.value = groups.by;
      stat.node.hidden = !groups.active;
      const count = groups.groups.length;
      note.textContent = !groups.active
        ? ''
        : groups.loading
          ? `Grouping… ${groups.progress[0].toLocaleString()} of ${Math.min(groups.progress[1], groups.limit).toLocaleString()} runs`
          : `${count.toLocaleString()} group${count === 1 ? '' : 's'}` +
            (groups.truncated
              ? ` of the newest ${groups.loaded.toLocaleString()} of ${groups.total.toLocaleString()} runs`
              : '');
    };
    groups.changed.connect(update);
    update();
    return h(
      'div',
      { className: 'nbtrack-group-bar' },
      by.node,
      stat.node,
      note
    );
  }

  private _groups: RunGroupsState | null = null;
  private _updateFilters: () => void;
  private _compare: CompareState | null = null;
  private _isTab: boolean;
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
