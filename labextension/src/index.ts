/**
 * nbtrack's JupyterLab extension: registers the runs panel plugin, nothing else.
 */
import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';

import { addCommands } from './commands';
import { RunsModel } from './model';
import { RunsPanel } from './panel';
import { CommandIDs } from './tokens';

/**
 * The runs panel in the left sidebar. Every dependency is optional so the
 * plugin also activates in Notebook 7 (no ILabShell there).
 */
const runsPanelPlugin: JupyterFrontEndPlugin<void> = {
  id: 'nbtrack:runs-panel',
  description:
    'A side panel listing, filtering, diffing and re-running nbtrack runs.',
  autoStart: true,
  optional: [
    INotebookTracker,
    IDocumentManager,
    ILabShell,
    ILayoutRestorer,
    ICommandPalette
  ],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker | null,
    docManager: IDocumentManager | null,
    labShell: ILabShell | null,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ): void => {
    const model = new RunsModel();
    const panel = new RunsPanel({ model, commands: app.commands });
    app.shell.add(panel, 'left', { rank: 650 });
    restorer?.add(panel, panel.id);
    addCommands({ app, model, panel, docManager });
    for (const command of [
      CommandIDs.openPanel,
      CommandIDs.refresh,
      CommandIDs.openModels,
      CommandIDs.openDrift,
      CommandIDs.openLineage,
      CommandIDs.openRun
    ]) {
      palette?.addItem({ command, category: 'nbtrack' });
    }

    // The panel shows the store of the notebook in front of the user.
    const renamed = new WeakSet<NotebookPanel>();
    const follow = (widget: Widget | null): void => {
      if (!(widget instanceof NotebookPanel)) {
        return;
      }
      model.setPath(app.serviceManager.contents.localPath(widget.context.path));
      // A notebook renamed or moved into another project shows that project's store.
      if (!renamed.has(widget)) {
        renamed.add(widget);
        widget.context.pathChanged.connect(() => {
          if (tracker?.currentWidget === widget) {
            follow(widget);
          }
        });
      }
    };
    tracker?.currentChanged.connect((_, widget) => follow(widget));
    labShell?.currentChanged.connect((_, change) => follow(change.newValue));
    if (tracker?.currentWidget) {
      follow(tracker.currentWidget);
    } else {
      model.setPath('');
    }
    model.setVisible(panel.isVisible);
    model.start();
  }
};

export default [runsPanelPlugin];
