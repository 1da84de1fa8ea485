/**
 * The commands of the runs panel: open it, refresh, diff and chart the selected
 * runs, jump to a run's cell, re-run a run.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  Dialog,
  InputDialog,
  MainAreaWidget,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { NotebookPanel } from '@jupyterlab/notebook';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { Widget } from '@lumino/widgets';

import { IRunSummary, fetchRun } from './api';
import { ColumnChooser } from './columns';
import { DiffView } from './diff';
import { DriftModel } from './driftmodel';
import { DriftView } from './driftview';
import { LineageModel } from './lineagemodel';
import { LineageView } from './lineageview';
import { ModelsModel } from './modelsmodel';
import { ModelsView } from './modelsview';
import { RunDetailView } from './detail';
import { RunDetailModel } from './detailmodel';
import { RunDiffModel } from './diffmodel';
import { notebookServerPath, runLabel, shortId } from './format';
import { runsIcon } from './icons';
import { RunsModel, messageOf } from './model';
import { RunsPanel } from './panel';
import { CommandIDs } from './tokens';

export interface ICommandContext {
  app: JupyterFrontEnd;
  model: RunsModel;
  panel: Widget;
  docManager: IDocumentManager | null;
  /** The Runs tab's model (commands given `{tab: true}` act on it). */
  tabModel: RunsModel;
}

/** The id of the Runs tab in the main area. */
export const RUNS_TAB_ID = 'nbtrack-runs-tab';

/** Register every nbtrack command. */
export function addCommands(context: ICommandContext): void {
  const { app, panel, docManager, tabModel } = context;
  const { commands, shell } = app;
  // Buttons of the Runs tab say `tab: true`: their selection is the tab's.
  const pick = (args: ReadonlyPartialJSONObject): RunsModel =>
    args.tab ? tabModel : context.model;
  let tabStarted = false;

  const openInMain = (content: Widget, label: string, id: string): void => {
    const existing = Array.from(shell.widgets('main')).find(w => w.id === id);
    if (existing) {
      existing.dispose();
    }
    const widget = new MainAreaWidget({ content });
    widget.id = id;
    widget.title.label = label;
    widget.title.icon = runsIcon;
    widget.title.closable = true;
    shell.add(widget, 'main');
    shell.activateById(widget.id);
  };

  const labelOf = (model: RunsModel, runId: string): string => {
    const run = model.findRun(runId);
    return run ? runLabel(run) : shortId(runId);
  };

  commands.addCommand(CommandIDs.openPanel, {
    label: 'Show nbtrack Runs',
    caption: 'Open the panel of tracked runs',
    execute: () => shell.activateById(panel.id)
  });

  commands.addCommand(CommandIDs.refresh, {
    label: 'Refresh nbtrack Runs',
    execute: args =>
      pick(args)
        .refresh(true)
        .catch(() => undefined)
  });

  commands.addCommand(CommandIDs.compareSelected, {
    label: 'Diff Selected Runs',
    caption: 'Show what differs between the selected runs',
    isEnabled: args => pick(args).selection.length >= 2,
    execute: args => {
      const model = pick(args);
      const ids = model.selectionOldestFirst();
      const labels: { [id: string]: string } = {};
      ids.forEach(id => (labels[id] = labelOf(model, id)));
      openInMain(
        new DiffView({
          model: new RunDiffModel({ path: model.path, runIds: ids, labels })
        }),
        ids.length === 2
          ? `Diff ${shortId(ids[0])} ↔ ${shortId(ids[1])}`
          : `Compare ${ids.length} runs`,
        'nbtrack-diff'
      );
    }
  });

  commands.addCommand(CommandIDs.showDetails, {
    label: 'Show Run Details and Metric Curves',
    isEnabled: args => pick(args).selection.length >= 1,
    execute: args => {
      const model = pick(args);
      const ids = model.selectionOldestFirst();
      openInMain(
        new RunDetailView({
          model: new RunDetailModel({ path: model.path, runIds: ids }),
          commands
        }),
        ids.length === 1
          ? `Run ${labelOf(model, ids[0])}`
          : `Curves of ${ids.length} runs`,
        'nbtrack-detail'
      );
    }
  });

  commands.addCommand(CommandIDs.openCell, {
    label: 'Go to the Cell of a Run',
    execute: async args => {
      const model = pick(args);
      const runId = String(args.runId ?? model.selection[0] ?? '');
      if (!runId) {
        return;
      }
      try {
        const run: IRunSummary =
          model.findRun(runId) ?? (await fetchRun(model.path, runId));
        await openCell(model, run);
      } catch (error) {
        Notification.error(
          `Cannot open the cell of run ${shortId(runId)}: ${messageOf(error)}`
        );
      }
    }
  });

  const openCell = async (
    model: RunsModel,
    run: IRunSummary
  ): Promise<void> => {
    const path = notebookServerPath(
      model.status?.project_path ?? null,
      run.notebook_path
    );
    if (path === null || docManager === null) {
      Notification.warning(
        `The notebook of run ${shortId(run.run_id)} (${run.notebook_path ?? 'none'}) is not under this server's root.`
      );
      return;
    }
    const widget = docManager.openOrReveal(path);
    if (!(widget instanceof NotebookPanel)) {
      return;
    }
    await widget.context.ready;
    await widget.revealed;
    const notebook = widget.content;
    const index = notebook.widgets.findIndex(
      cell => cell.model.id === run.cell_id
    );
    if (index < 0) {
      Notification.info(
        `Opened ${path}; its cell of run ${shortId(run.run_id)} is no longer there.`,
        { autoClose: 4000 }
      );
      return;
    }
    notebook.deselectAll();
    notebook.activeCellIndex = index;
    notebook.mode = 'command';
    await notebook.scrollToCell(notebook.widgets[index], 'center');
    shell.activateById(widget.id);
  };

  commands.addCommand(CommandIDs.rerun, {
    label: 'Re-run a Run',
    caption: 'Execute the notebook of a run again with its parameters',
    execute: async args => {
      const runId = String(args.runId ?? '');
      if (!runId) {
        return;
      }
      try {
        const job = await pick(args).rerun(runId);
        Notification.info(
          job.created === false
            ? `Run ${shortId(runId)} is already being re-run.`
            : `Re-running run ${shortId(runId)} in the background…`,
          { autoClose: 4000 }
        );
      } catch (error) {
        Notification.error(
          `Cannot re-run ${shortId(runId)}: ${messageOf(error)}`
        );
      }
    }
  });

  commands.addCommand(CommandIDs.rerunSelected, {
    label: 'Re-run the Selected Run',
    isEnabled: args => pick(args).selection.length === 1,
    execute: args =>
      commands.execute(CommandIDs.rerun, {
        runId: pick(args).selection[0],
        tab: args.tab ?? false
      })
  });

  addViewCommands(context, openInMain);

  commands.addCommand(CommandIDs.chooseColumns, {
    label: 'Choose the Param and Metric Columns',
    caption: 'Choose which parameters and metrics show as columns',
    execute: async args => {
      const model = pick(args);
      const chooser = new ColumnChooser(model);
      const result = await showDialog({
        title: 'Columns of the runs table',
        body: chooser,
        buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Show' })]
      });
      if (result.button.accept) {
        model.setValueColumns(chooser.params, chooser.metrics);
      }
    }
  });

  commands.addCommand(CommandIDs.openRunsTab, {
    label: 'nbtrack Runs',
    caption:
      'The runs of the notebook in front: table, filters and comparison charts',
    icon: runsIcon,
    execute: () => {
      let widget = Array.from(shell.widgets('main')).find(
        w => w.id === RUNS_TAB_ID
      );
      if (widget === undefined) {
        const content = new RunsPanel({
          model: tabModel,
          commands,
          variant: 'tab'
        });
        const main = new MainAreaWidget({ content });
        main.id = RUNS_TAB_ID;
        main.title.label = 'Runs';
        main.title.icon = runsIcon;
        main.title.closable = true;
        shell.add(main, 'main');
        widget = main;
        if (!tabStarted) {
          tabStarted = true;
          tabModel.start();
        }
      }
      shell.activateById(widget.id);
    }
  });
}

/**
 * The run views' commands: a run's detail, its lineage, the Models view and a file's
 * drift. Each takes the store as `path` (a notebook's server path; default: the
 * panel's), so a view opened from another view stays on its store.
 */
function addViewCommands(
  context: ICommandContext,
  openInMain: (content: Widget, label: string, id: string) => void
): void {
  const { app, model } = context;
  const { commands } = app;
  const pathOf = (args: { [key: string]: unknown }): string =>
    typeof args.path === 'string' ? args.path : model.path;
  /** The run named by the arguments, else the selected one, else asked for (palette). */
  const runOf = async (args: { [key: string]: unknown }): Promise<string> => {
    const given = String(args.runId ?? model.selection[0] ?? '');
    if (given) {
      return given;
    }
    const asked = await InputDialog.getText({
      title: 'Which run?',
      label: 'A run id, a unique prefix of one, or last',
      text: 'last'
    });
    return asked.button.accept ? (asked.value ?? '').trim() : '';
  };

  commands.addCommand(CommandIDs.openRun, {
    label: 'Open a Run',
    execute: async args => {
      const runId = await runOf(args);
      if (runId) {
        openInMain(
          new RunDetailView({
            model: new RunDetailModel({ path: pathOf(args), runIds: [runId] }),
            commands
          }),
          `Run ${shortId(runId)}`,
          `nbtrack-run-${runId}`
        );
      }
    }
  });

  commands.addCommand(CommandIDs.openLineage, {
    label: 'Show the Lineage of a Run',
    caption: 'Where its data came from, who read what it wrote, its models',
    execute: async args => {
      const runId = await runOf(args);
      if (!runId) {
        return;
      }
      openInMain(
        new LineageView({
          model: new LineageModel({ path: pathOf(args), runId, depth: 2 }),
          commands
        }),
        `Lineage ${shortId(runId)}`,
        `nbtrack-lineage-${runId}`
      );
    }
  });

  commands.addCommand(CommandIDs.openModels, {
    label: 'Show nbtrack Models',
    caption: 'Registered models, their versions, aliases and runs',
    execute: args =>
      openInMain(
        new ModelsView({
          model: new ModelsModel({
            path: pathOf(args),
            name: typeof args.name === 'string' ? args.name : undefined
          }),
          commands
        }),
        'Models',
        'nbtrack-models'
      )
  });

  commands.addCommand(CommandIDs.openDrift, {
    label: 'Show the Drift of a Data File',
    caption: 'Per-column drift of a tracked table across its recorded versions',
    execute: async args => {
      let file = typeof args.file === 'string' ? args.file : '';
      if (!file) {
        const asked = await InputDialog.getText({
          title: 'Drift of a data file',
          label:
            'A tracked table (CSV, Parquet, JSON lines) or folder, as runs recorded it',
          placeholder: 'data/train.csv'
        });
        file = asked.button.accept ? (asked.value ?? '').trim() : '';
      }
      if (file) {
        openInMain(
          new DriftView(new DriftModel({ path: pathOf(args), file })),
          `Drift ${file.split('/').pop()}`,
          `nbtrack-drift-${file}`
        );
      }
    }
  });
}
