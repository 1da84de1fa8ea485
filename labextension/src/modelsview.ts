/**
 * The Models view: registered models on the left; the picked model's versions
 * (aliases, flavor, signature, the run that made each, its lineage) and alias
 * history on the right. Setting or removing an alias asks first, and is refused by
 * the server if the alias moved since the view loaded it.
 */
import {
  Dialog,
  InputDialog,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import { CommandRegistry } from '@lumino/commands';

import { h } from './dom';
import { FetchView } from './fetchview';
import { formatTime, shortId } from './format';
import { messageOf } from './model';
import {
  IVersionRow,
  ModelsModel,
  historyRows,
  versionRows
} from './modelsmodel';
import { CommandIDs } from './tokens';

export namespace ModelsView {
  export interface IOptions {
    model: ModelsModel;
    commands: CommandRegistry;
  }
}

const sizeText = (size: number | null): string =>
  size === null
    ? ''
    : size < 1024 * 1024
      ? `${(size / 1024).toFixed(1)} KiB`
      : `${(size / 1024 / 1024).toFixed(1)} MiB`;

/** The registry of one store; owns its model. */
export class ModelsView extends FetchView<ModelsModel> {
  constructor(options: ModelsView.IOptions) {
    super(options.model, 'Loading the models…');
    this.addClass('nbtrack-models');
    this._commands = options.commands;
  }

  protected renderContent(): (Node | string)[] {
    const models = this.model.models;
    if (models.length === 0) {
      return [
        h(
          'p',
          { className: 'nbtrack-same' },
          'No model is registered in this store. Register one with nbtrack.log_model(model, "name") in a tracked cell, or `nbtrack models register RUN PATH --name NAME`.'
        )
      ];
    }
    const list = h(
      'ul',
      {
        className: 'nbtrack-models-list',
        role: 'listbox',
        'aria-label': 'Models'
      },
      models.map(({ model, aliases }) => {
        const item = h(
          'li',
          {
            className:
              model.name === this.model.selected ? 'jp-mod-selected' : '',
            role: 'option',
            tabindex: 0,
            'aria-selected': model.name === this.model.selected,
            'data-model': model.name
          },
          h('span', { className: 'nbtrack-model-name' }, model.name),
          h(
            'span',
            { className: 'nbtrack-hint' },
            ` ${model.versions} version${model.versions === 1 ? '' : 's'}`
          ),
          aliases ? h('div', { className: 'nbtrack-hint' }, aliases) : null
        );
        const pick = (): void => void this.model.select(model.name);
        item.addEventListener('click', pick);
        item.addEventListener('keydown', event => {
          if (event.key === 'Enter') {
            pick();
          }
        });
        return item;
      })
    );
    return [
      h('div', { className: 'nbtrack-models-layout' }, list, this._detail())
    ];
  }

  private _detail(): HTMLElement {
    const detail = this.model.detail;
    const section = h('section', { className: 'nbtrack-model-detail' });
    if (this.model.detailError !== null) {
      section.append(
        h(
          'div',
          { className: 'nbtrack-error', role: 'alert' },
          this.model.detailError
        )
      );
      return section;
    }
    if (detail === null) {
      section.append(this.model.selected ? 'Loading…' : 'Pick a model.');
      return section;
    }
    const model = detail.model;
    const aliases = Object.entries(model.aliases).sort(([a], [b]) =>
      a.localeCompare(b)
    );
    section.append(
      h('h2', {}, model.name),
      model.description ? h('p', {}, model.description) : '',
      h(
        'div',
        { className: 'nbtrack-alias-bar' },
        aliases.length ? 'Aliases: ' : 'No alias yet.',
        aliases.map(([alias, version]) => {
          const remove = h(
            'button',
            {
              className: 'nbtrack-alias-remove',
              title: `Remove @${alias}`,
              'aria-label': `Remove alias ${alias}`
            },
            '×'
          );
          remove.addEventListener(
            'click',
            () => void this._remove(alias, version)
          );
          return h(
            'span',
            { className: 'nbtrack-alias-chip', 'data-alias': alias },
            `@${alias} → v${version}`,
            remove
          );
        })
      ),
      h(
        'table',
        { className: 'nbtrack-diff-table nbtrack-versions' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            [
              'Version',
              'Aliases',
              'Flavor',
              'Signature',
              'Size',
              'Created',
              'Run',
              ''
            ].map(title => h('th', {}, title))
          )
        ),
        h(
          'tbody',
          {},
          versionRows(detail).map(row => this._versionRow(row))
        )
      ),
      h('h3', {}, 'Alias history'),
      detail.alias_history.length
        ? h(
            'ul',
            { className: 'nbtrack-alias-history' },
            historyRows(detail).map(({ move, text }) =>
              h(
                'li',
                {},
                h('span', { className: 'nbtrack-hint' }, formatTime(move.at)),
                ' ',
                text
              )
            )
          )
        : h('p', { className: 'nbtrack-same' }, 'No alias was ever set.')
    );
    return section;
  }

  private _versionRow(row: IVersionRow): HTMLElement {
    const version = row.version;
    const button = (
      label: string,
      onClick: () => void,
      title = ''
    ): HTMLElement => {
      const element = h(
        'button',
        { className: 'jp-Button jp-mod-styled', title },
        label
      );
      element.addEventListener('click', onClick);
      return element;
    };
    const run = version.run_id;
    return h(
      'tr',
      {
        'data-version': version.version,
        className: version.archived ? 'nbtrack-archived' : ''
      },
      h(
        'th',
        { scope: 'row' },
        `v${version.version}${version.archived ? ' (archived)' : ''}`
      ),
      h(
        'td',
        {},
        row.aliases.map(alias =>
          h('span', { className: 'nbtrack-alias-chip' }, `@${alias}`)
        )
      ),
      h('td', {}, version.flavor),
      h('td', { title: row.signature }, row.signature),
      h('td', {}, sizeText(version.size)),
      h(
        'td',
        { title: version.created_at ?? '' },
        formatTime(version.created_at)
      ),
      h(
        'td',
        {},
        run
          ? [
              button(
                shortId(run),
                () => this._run(CommandIDs.openRun, run),
                'Open the run that made it'
              ),
              button(
                'Lineage',
                () => this._run(CommandIDs.openLineage, run),
                'Where its data came from, who read it'
              )
            ]
          : 'no run'
      ),
      h(
        'td',
        {},
        button('Set alias…', () => void this._setAlias(version.version))
      )
    );
  }

  private _run(command: string, runId: string): void {
    void this._commands.execute(command, { runId, path: this.model.path });
  }

  private async _setAlias(version: number): Promise<void> {
    const name = this.model.selected ?? '';
    const asked = await InputDialog.getText({
      title: `Alias for ${name} v${version}`,
      label: 'Alias (letters, digits, _ or -), e.g. champion or challenger',
      placeholder: 'champion'
    });
    const alias = asked.button.accept ? (asked.value ?? '').trim() : '';
    if (!alias) {
      return;
    }
    const current = this.model.aliasVersion(alias);
    if (current === version) {
      Notification.info(`@${alias} is already on v${version}.`, {
        autoClose: 3000
      });
      return;
    }
    const what =
      current === null
        ? `Set @${alias} of ${name} on v${version}?`
        : `Move @${alias} of ${name} from v${current} to v${version}?`;
    await this._confirmAndMove(what, alias, version);
  }

  private async _remove(alias: string, version: number): Promise<void> {
    const name = this.model.selected ?? '';
    await this._confirmAndMove(
      `Remove @${alias} of ${name} (now on v${version})?`,
      alias,
      null
    );
  }

  private async _confirmAndMove(
    question: string,
    alias: string,
    version: number | null
  ): Promise<void> {
    const answer = await showDialog({
      title: version === null ? 'Remove alias' : 'Move alias',
      body: `${question} Every move is kept in the alias history.`,
      buttons: [
        Dialog.cancelButton(),
        Dialog.okButton({ label: version === null ? 'Remove' : 'Move' })
      ]
    });
    if (!answer.button.accept) {
      return;
    }
    try {
      const move = await this.model.moveAlias(alias, version);
      Notification.success(
        move.to_version === null
          ? `@${alias} removed.`
          : `@${alias} now on v${move.to_version}.`,
        { autoClose: 3000 }
      );
    } catch (error) {
      Notification.error(`Alias not moved: ${messageOf(error)}`);
    }
  }

  private _commands: CommandRegistry;
}
