/**
 * The Models view's state: the registered models, the versions of the one picked
 * (newest first, with their aliases), its alias history, and alias moves that never
 * overwrite a move someone else made meanwhile (the server checks `expected`).
 */
import {
  IAliasMove,
  IModelDetail,
  IModelVersion,
  IRegisteredModel,
  ISignatureColumn,
  fetchModel,
  fetchModels,
  moveAlias
} from './api';
import { FetchModel } from './fetchmodel';
import { messageOf } from './model';

/** A version as a row of the versions table. */
export interface IVersionRow {
  version: IModelVersion;
  aliases: string[];
  /** e.g. `3 inputs: age float64, city string, … → 1 output`. */
  signature: string;
}

/** One line of the alias history, newest first. */
export interface IHistoryRow {
  move: IAliasMove;
  text: string;
}

function columnText(column: ISignatureColumn): string {
  const spec = column['tensor-spec'];
  const type = spec ? `${spec.dtype}[${spec.shape.join('×')}]` : column.type;
  return column.name ? `${column.name} ${type}` : type;
}

/** A signature in one line: the first few inputs, then how many outputs. */
export function signatureText(version: IModelVersion, shown = 4): string {
  const inputs = version.signature?.inputs ?? [];
  const outputs = version.signature?.outputs ?? [];
  if (inputs.length === 0 && outputs.length === 0) {
    return 'no signature';
  }
  const head = inputs.slice(0, shown).map(columnText).join(', ');
  const rest =
    inputs.length > shown ? `, … (${inputs.length - shown} more)` : '';
  const outs = outputs.length
    ? ` → ${outputs.length === 1 ? columnText(outputs[0]) : `${outputs.length} outputs`}`
    : '';
  return `${inputs.length} input${inputs.length === 1 ? '' : 's'}: ${head}${rest}${outs}`;
}

/** The versions of a model, newest first, each with the aliases on it now. */
export function versionRows(detail: IModelDetail): IVersionRow[] {
  const byVersion = new Map<number, string[]>();
  for (const [alias, version] of Object.entries(detail.model.aliases)) {
    byVersion.set(version, [...(byVersion.get(version) ?? []), alias].sort());
  }
  return [...detail.versions]
    .sort((a, b) => b.version - a.version)
    .map(version => ({
      version,
      aliases: byVersion.get(version.version) ?? [...version.aliases].sort(),
      signature: signatureText(version)
    }));
}

/** Every alias move, newest first, as a sentence. */
export function historyRows(detail: IModelDetail): IHistoryRow[] {
  return [...detail.alias_history]
    .sort((a, b) =>
      a.alias === b.alias
        ? b.seq - a.seq
        : (b.at ?? '').localeCompare(a.at ?? '')
    )
    .map(move => {
      const from = move.from_version === null ? 'set' : `v${move.from_version}`;
      const to = move.to_version === null ? 'removed' : `v${move.to_version}`;
      const who = [move.user, move.host].filter(Boolean).join('@');
      const text =
        move.from_version === null
          ? `@${move.alias} set on ${to}`
          : move.to_version === null
            ? `@${move.alias} removed from ${from}`
            : `@${move.alias} moved ${from} → ${to}`;
      return { move, text: `${text}${who ? ` by ${who}` : ''}` };
    });
}

/** Models by name, each with its aliases as `@alias v3`. */
export function modelRows(
  models: IRegisteredModel[]
): { model: IRegisteredModel; aliases: string }[] {
  return [...models]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map(model => ({
      model,
      aliases: Object.entries(model.aliases)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([alias, version]) => `@${alias} v${version}`)
        .join(' ')
    }));
}

export namespace ModelsModel {
  export interface IOptions {
    path: string;
    /** The model to show first. */
    name?: string;
  }
}

/** The registered models of one store and the detail of the one picked. */
export class ModelsModel extends FetchModel<IRegisteredModel[]> {
  constructor(options: ModelsModel.IOptions) {
    super(() => fetchModels(options.path));
    this.path = options.path;
    void this.ready.then(() => {
      const first = options.name ?? this.models[0]?.model.name;
      if (first) {
        void this.select(first);
      }
    });
  }

  readonly path: string;

  get models(): { model: IRegisteredModel; aliases: string }[] {
    return modelRows(this._models ?? this.data ?? []);
  }

  /** The picked model's name, its detail (null while loading), or why it failed. */
  get selected(): string | null {
    return this._selected;
  }

  get detail(): IModelDetail | null {
    return this._detail;
  }

  get detailError(): string | null {
    return this._detailError;
  }

  async select(name: string): Promise<void> {
    this._selected = name;
    this._detail = null;
    this._detailError = null;
    this._changed.emit();
    try {
      const detail = await fetchModel(this.path, name);
      if (this._selected === name) {
        this._detail = detail;
      }
    } catch (error) {
      if (this._selected === name) {
        this._detailError = messageOf(error);
      }
    }
    if (!this.isDisposed) {
      this._changed.emit();
    }
  }

  /** The version `alias` of the picked model is on now, or null. */
  aliasVersion(alias: string): number | null {
    return this._detail?.model.aliases[alias] ?? null;
  }

  /**
   * Move `alias` of the picked model to `version` (null removes it), from where this
   * view saw it; then reload. Rejects with the server's message (e.g. it moved meanwhile).
   */
  async moveAlias(alias: string, version: number | null): Promise<IAliasMove> {
    const name = this._selected;
    if (name === null) {
      throw new Error('no model is selected');
    }
    try {
      return await moveAlias(
        this.path,
        name,
        alias,
        version,
        this.aliasVersion(alias)
      );
    } finally {
      // Reload either way: after a refused move the user sees where the alias is now.
      this._models = await fetchModels(this.path).catch(() => this._models);
      await this.select(name);
    }
  }

  private _models: IRegisteredModel[] | null = null;
  private _selected: string | null = null;
  private _detail: IModelDetail | null = null;
  private _detailError: string | null = null;
}
