/**
 * The runs table: a virtualized list. Only the rows on screen exist in the DOM,
 * and the model loads only the pages they fall in, so 100,000 runs scroll as
 * smoothly as 10.
 */
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { IRunSummary } from './api';
import { h } from './dom';
import {
  formatDuration,
  formatLocation,
  formatTime,
  formatValue,
  shortId
} from './format';
import { groupRow } from './grouprow';
import { RunGroupsState } from './groupstate';
import { IColumn, RunsModel } from './model';

/** Height of one row, in pixels (fixed: the list computes positions from it). */
export const ROW_HEIGHT = 26;
/** Rows rendered above and below the visible ones. */
const OVERSCAN = 8;

const COLUMN_WIDTH: { [id: string]: number } = {
  status: 22,
  name: 96,
  notebook_path: 118,
  started_at: 76,
  duration: 78,
  parent_id: 96,
  rerun_of: 150
};
const VALUE_COLUMN_WIDTH = 84;
/** The name column when the rows are grouped: it holds `Notebook run 0f9e8d7c · 12 runs`. */
const GROUP_NAME_WIDTH = 250;
const CHECK_WIDTH = 24;

export namespace RunsTable {
  export interface IOptions {
    model: RunsModel;
    /** Open the run's notebook at its cell. */
    onOpenCell: (run: IRunSummary) => void;
    /** Show a run's details (double click). */
    onOpenRun: (run: IRunSummary) => void;
    /** The sidebar's narrow list (fewer columns). */
    compact?: boolean;
    /** A performance mark to set when the first runs are drawn. */
    paintMark?: string;
    /** Called once, after the first runs are drawn. */
    onFirstPaint?: () => void;
    /** The grouping of the Runs tab's table (rows are groups and their runs when active). */
    groups?: RunGroupsState;
  }
}

/** A sortable, virtualized table of runs. */
export class RunsTable extends Widget {
  constructor(options: RunsTable.IOptions) {
    super();
    this.addClass('nbtrack-table');
    this._model = options.model;
    this._onOpenCell = options.onOpenCell;
    this._onOpenRun = options.onOpenRun;
    this._compact = options.compact ?? false;
    this._paintMark = options.paintMark ?? null;
    this._onFirstPaint = options.onFirstPaint ?? null;
    this._groups = options.groups ?? null;
    this._header = h('div', {
      className: 'nbtrack-row nbtrack-head',
      role: 'row'
    });
    this._rows = h('div', { className: 'nbtrack-rows', role: 'rowgroup' });
    this._spacer = h('div', { className: 'nbtrack-spacer' }, this._rows);
    this._empty = h('div', { className: 'nbtrack-empty' });
    this.node.setAttribute('role', 'grid');
    this.node.append(this._header, this._spacer, this._empty);
    this.node.addEventListener('scroll', () => this._schedule());
    this._model.changed.connect(this._onModelChanged, this);
    this._groups?.changed.connect(this._onModelChanged, this);
  }

  dispose(): void {
    this._model.changed.disconnect(this._onModelChanged, this);
    this._groups?.changed.disconnect(this._onModelChanged, this);
    super.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._schedule();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._schedule();
  }

  protected onResize(msg: Widget.ResizeMessage): void {
    super.onResize(msg);
    this._schedule();
  }

  /** Anything drawn may have changed (rows, selection, columns): draw it all again. */
  private _onModelChanged(): void {
    this._dirty = true;
    this._schedule();
  }

  private _schedule(): void {
    if (this._frame !== 0) {
      return;
    }
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      this._render();
    });
  }

  /** A column's width; the name is wider when it holds a group's title. */
  private _width(column: IColumn): number {
    if (column.id === 'name' && this._groups?.active) {
      return GROUP_NAME_WIDTH;
    }
    return COLUMN_WIDTH[column.id] ?? VALUE_COLUMN_WIDTH;
  }

  private _template(columns: IColumn[]): string {
    return [
      `${CHECK_WIDTH}px`,
      ...columns.map(c => `${this._width(c)}px`)
    ].join(' ');
  }

  private _render(): void {
    if (this.isDisposed) {
      return;
    }
    const model = this._model;
    const columns = this._compact ? model.compactColumns : model.columns;
    const template = this._template(columns);
    const width =
      CHECK_WIDTH + columns.reduce((sum, c) => sum + this._width(c), 0);
    const groups = this._groups?.active ? this._groups : null;
    if (this._dirty) {
      this._renderHeader(columns, template, width);
    }

    const total = groups ? groups.rowCount : model.total;
    this._spacer.style.height = `${total * ROW_HEIGHT}px`;
    this._spacer.style.width = `${width}px`;
    const headerHeight = this._header.offsetHeight;
    const scrollTop = Math.max(0, this.node.scrollTop - headerHeight);
    const visible = Math.ceil((this.node.clientHeight || 600) / ROW_HEIGHT);
    const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(total - 1, first + visible + 2 * OVERSCAN);
    if (groups === null) {
      model.setViewport(first, Math.max(first, last));
    }

    this._rows.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
    // Scrolling keeps the rows still on screen and builds only the new ones;
    // a change of the model builds them all again.
    const cache = this._dirty ? new Map<number, HTMLElement>() : this._rowCache;
    const next = new Map<number, HTMLElement>();
    const rows: HTMLElement[] = [];
    for (let index = first; index <= last; index++) {
      let row = cache.get(index);
      if (row === undefined) {
        const built = this._buildRow(index, groups, columns, template);
        row = built.row;
        if (built.loading) {
          rows.push(row);
          continue;
        }
      }
      next.set(index, row);
      rows.push(row);
    }
    this._rowCache = next;
    this._dirty = false;
    this._rows.replaceChildren(...rows);
    if (
      this._onFirstPaint !== null &&
      groups === null &&
      total > 0 &&
      model.runAt(first)
    ) {
      if (this._paintMark !== null) {
        performance.mark(this._paintMark);
      }
      const done = this._onFirstPaint;
      this._onFirstPaint = null;
      // After this frame: what waits for the first rows must not delay them.
      setTimeout(done, 0);
    }
    this._empty.textContent = this._emptyText();
    this._empty.hidden = total > 0 || this._empty.textContent === '';
  }

  /** The row at `index`: a run, or with grouping a group or a run under it; a placeholder while loading. */
  private _buildRow(
    index: number,
    groups: RunGroupsState | null,
    columns: IColumn[],
    template: string
  ): { row: HTMLElement; loading: boolean } {
    if (groups === null) {
      const run = this._model.runAt(index);
      return {
        row: this._renderRow(index, run, columns, template),
        loading: run === undefined
      };
    }
    const item = groups.rowAt(index);
    if (item === undefined) {
      return {
        row: this._renderRow(index, undefined, columns, template),
        loading: true
      };
    }
    if (item.type === 'group') {
      const row = groupRow(index, item.group, groups, columns, template, {
        follow: group => {
          // The runs of one notebook run or sweep, flat: the rows `ls --parent ID` lists.
          groups.setBy('none');
          this._model.setQuery(
            group.by === 'sweep'
              ? {
                  sweep: group.id ?? undefined,
                  parent_id: undefined,
                  kind: 'cell'
                }
              : {
                  parent_id: group.id ?? undefined,
                  sweep: undefined,
                  kind: 'cell'
                }
          );
        }
      });
      return { row, loading: false };
    }
    const row = this._renderRow(index, item.run, columns, template);
    row.classList.add('nbtrack-mod-child');
    return { row, loading: false };
  }

  private _emptyText(): string {
    const model = this._model;
    const groups = this._groups?.active ? this._groups : null;
    if (groups?.error) {
      return groups.error;
    }
    if (groups?.loading && groups.rowCount === 0) {
      const [done, of] = groups.progress;
      return of
        ? `Loading the runs to group… ${done.toLocaleString()} of ${Math.min(of, groups.limit).toLocaleString()}`
        : 'Loading the runs to group…';
    }
    if (model.status === null) {
      return model.error ? '' : 'Loading runs…';
    }
    if (!model.status.exists) {
      return 'No runs yet. Add %%track to a cell (after %load_ext nbtrack) and run it.';
    }
    if (model.query.text || model.query.where) {
      return 'No run matches the filter.';
    }
    return 'No runs of this kind yet.';
  }

  private _renderHeader(
    columns: IColumn[],
    template: string,
    width: number
  ): void {
    const { sort, descending } = this._model.query;
    const cells = columns.map(column => {
      const sorted = sort === column.id;
      const cell = h(
        'div',
        {
          className: `nbtrack-cell nbtrack-col-${column.group}${sorted ? ' nbtrack-mod-sorted' : ''}`,
          role: 'columnheader',
          title: `Sort by ${column.label}`,
          'aria-sort': sorted
            ? descending
              ? 'descending'
              : 'ascending'
            : 'none',
          'data-column': column.id
        },
        column.id === 'status' ? '' : column.label,
        sorted ? (descending ? '▾' : '▴') : ''
      );
      if (column.sortable !== false) {
        cell.addEventListener('click', () => this._model.sortBy(column.id));
      } else {
        cell.title = column.label;
      }
      return cell;
    });
    this._header.replaceChildren(
      h('div', { className: 'nbtrack-cell' }),
      ...cells
    );
    this._header.style.gridTemplateColumns = template;
    this._header.style.width = `${width}px`;
  }

  private _renderRow(
    index: number,
    run: IRunSummary | undefined,
    columns: IColumn[],
    template: string
  ): HTMLElement {
    if (run === undefined) {
      const row = h(
        'div',
        {
          className: 'nbtrack-row nbtrack-mod-loading',
          role: 'row',
          'aria-rowindex': index + 1
        },
        h('div', { className: 'nbtrack-cell' }),
        h('div', { className: 'nbtrack-cell' }, '…')
      );
      row.style.gridTemplateColumns = template;
      return row;
    }
    const selected = this._model.isSelected(run.run_id);
    const check = h('input', {
      type: 'checkbox',
      className: 'nbtrack-check',
      title: 'Select for comparison',
      'aria-label': `Select run ${run.run_id.slice(0, 8)}`
    });
    check.checked = selected;
    check.addEventListener('click', event => {
      event.stopPropagation();
      this._model.toggleSelected(run.run_id);
    });
    const row = h(
      'div',
      {
        className: `nbtrack-row nbtrack-status-${run.status}${selected ? ' jp-mod-selected' : ''}`,
        role: 'row',
        'aria-rowindex': index + 1,
        'aria-selected': selected,
        'data-run-id': run.run_id
      },
      h('div', { className: 'nbtrack-cell' }, check),
      columns.map(column => this._renderCell(run, column))
    );
    row.style.gridTemplateColumns = template;
    row.addEventListener('click', event => {
      if (event.ctrlKey || event.metaKey || event.shiftKey) {
        this._model.toggleSelected(run.run_id);
      } else {
        this._model.selectOnly(run.run_id);
      }
    });
    row.addEventListener('dblclick', () => this._onOpenRun(run));
    return row;
  }

  private _renderCell(run: IRunSummary, column: IColumn): HTMLElement {
    const cell = h('div', {
      className: `nbtrack-cell nbtrack-col-${column.group}`,
      role: 'gridcell',
      'data-column': column.id
    });
    switch (column.id) {
      case 'status':
        // A dot on screen; the word for screen readers, tooltips and tests.
        cell.append(
          h('span', { className: `nbtrack-dot nbtrack-dot-${run.status}` }),
          h('span', { className: 'nbtrack-sr-only' }, run.status)
        );
        cell.title = run.error ?? run.status;
        break;
      case 'name':
        cell.textContent = run.name ?? run.run_id.slice(0, 8);
        cell.title = `${run.name ?? ''} ${run.run_id}`.trim();
        break;
      case 'notebook_path': {
        const link = h(
          'a',
          {
            className: 'nbtrack-link',
            href: '#',
            title: `Open ${run.notebook_path ?? ''} at the cell of this run`
          },
          formatLocation(run)
        );
        link.addEventListener('click', event => {
          event.preventDefault();
          event.stopPropagation();
          this._onOpenCell(run);
        });
        cell.appendChild(link);
        break;
      }
      case 'started_at':
        cell.textContent = formatTime(run.started_at);
        cell.title = run.started_at ?? '';
        break;
      case 'duration':
        cell.textContent = formatDuration(run.duration);
        break;
      case 'parent_id':
        this._renderParent(cell, run);
        break;
      case 'rerun_of':
        this._renderRerun(cell, run);
        break;
      default: {
        const value =
          column.group === 'param'
            ? run.params[column.label]
            : run.metrics[column.label];
        cell.textContent = formatValue(value);
        cell.title = `${column.label} = ${formatValue(value)}`;
      }
    }
    return cell;
  }

  /** A notebook run's id leads to its cell runs: the table filters by it. */
  private _renderParent(cell: HTMLElement, run: IRunSummary): void {
    const parent = run.kind === 'notebook' ? run.run_id : run.parent_id;
    if (!parent) {
      return;
    }
    const link = h(
      'a',
      {
        className: 'nbtrack-link nbtrack-parent-link',
        href: '#',
        title: `Show the cell runs of notebook run ${parent}`
      },
      run.kind === 'notebook' ? `${shortId(parent)} ▸` : shortId(parent)
    );
    link.addEventListener('click', event => {
      event.preventDefault();
      event.stopPropagation();
      this._model.setQuery({ parent_id: parent, kind: 'cell' });
    });
    cell.appendChild(link);
  }

  /** `rerun of` the original's short id, and the verdict as a badge. */
  private _renderRerun(cell: HTMLElement, run: IRunSummary): void {
    if (!run.rerun_of) {
      return;
    }
    cell.append(shortId(run.rerun_of));
    const verdict = run.rerun_verdict;
    if (verdict) {
      cell.appendChild(
        h(
          'span',
          {
            className: `nbtrack-badge nbtrack-verdict-${verdictClass(verdict)}`,
            title: `Re-run verdict: ${verdict}`
          },
          verdict
        )
      );
    }
    cell.title = `Re-run of ${run.rerun_of}${verdict ? ` (${verdict})` : ''}`;
  }

  private _compact: boolean;
  private _groups: RunGroupsState | null;
  private _dirty = true;
  private _rowCache = new Map<number, HTMLElement>();
  private _paintMark: string | null;
  private _onFirstPaint: (() => void) | null;
  private _model: RunsModel;
  private _onOpenCell: (run: IRunSummary) => void;
  private _onOpenRun: (run: IRunSummary) => void;
  private _header: HTMLElement;
  private _spacer: HTMLElement;
  private _rows: HTMLElement;
  private _empty: HTMLElement;
  private _frame = 0;
}

/** How a verdict reads at a glance: reproduced, or not, or something else. */
export function verdictClass(verdict: string): 'ok' | 'moved' | 'other' {
  const word = verdict.toLowerCase();
  if (/^(not|did not|differ|failed|moved)/.test(word)) {
    return 'moved';
  }
  return /^(reproduced|same|ok)/.test(word) ? 'ok' : 'other';
}
