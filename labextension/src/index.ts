import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nbtrack:plugin',
  autoStart: true,
  activate: (_app: JupyterFrontEnd): void => {
    return;
  }
};

export default plugin;
