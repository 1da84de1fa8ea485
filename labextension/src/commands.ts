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
import { CommandIDs } from './tokens';

export interface ICommandContext {
  app: JupyterFrontEnd;
  model: RunsModel;
  panel: Widget;
  docManager: IDocumentManager | null;
}

/** Register every nbtrack command. */
export function addCommands(context: ICommandContext): void {
  const { app, model, panel, docManager } = context;
  const { commands, shell } = app;

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

  const labelOf = (runId: string): string => {
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
    execute: () => model.refresh(true).catch(() => undefined)
  });

  commands.addCommand(CommandIDs.compareSelected, {
    label: 'Diff Selected Runs',
    caption: 'Show what differs between the selected runs',
    isEnabled: () => model.selection.length >= 2,
    execute: () => {
      const ids = model.selectionOldestFirst();
      const labels: { [id: string]: string } = {};
      ids.forEach(id => (labels[id] = labelOf(id)));
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
    isEnabled: () => model.selection.length >= 1,
    execute: () => {
      const ids = model.selectionOldestFirst();
      openInMain(
        new RunDetailView({
          model: new RunDetailModel({ path: model.path, runIds: ids }),
          commands
        }),
        ids.length === 1
          ? `Run ${labelOf(ids[0])}`
          : `Curves of ${ids.length} runs`,
        'nbtrack-detail'
      );
    }
  });

  commands.addCommand(CommandIDs.openCell, {
    label: 'Go to the Cell of a Run',
    execute: async args => {
      const runId = String(args.runId ?? model.selection[0] ?? '');
      if (!runId) {
        return;
      }
      try {
        const run: IRunSummary =
          model.findRun(runId) ?? (await fetchRun(model.path, runId));
        await openCell(run);
      } catch (error) {
        Notification.error(
          `Cannot open the cell of run ${shortId(runId)}: ${messageOf(error)}`
        );
      }
    }
  });

  const openCell = async (run: IRunSummary): Promise<void> => {
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
        const job = await model.rerun(runId);
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
    isEnabled: () => model.selection.length === 1,
    execute: () =>
      commands.execute(CommandIDs.rerun, { runId: model.selection[0] })
  });

  addViewCommands(context, openInMain);

  commands.addCommand(CommandIDs.chooseColumns, {
    label: 'Choose the Param and Metric Columns',
    caption: 'Choose which parameters and metrics show as columns',
    execute: async () => {
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
