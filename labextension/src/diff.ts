/**
 * The diff view: what differs between two runs (or several, each against the
 * first): outcome, parameters, metrics with deltas, data versions, cell code and
 * packages. Only what differs by default; one toggle shows everything.
 */
import { Widget } from '@lumino/widgets';

import {
  IChange,
  IDataChange,
  IRunDiff,
  fetchCompare,
  fetchDiff,
  toNumber
} from './api';
import { h } from './dom';
import { formatDelta, formatValue, shortId } from './format';
import { messageOf } from './model';

export namespace DiffView {
  export interface IOptions {
    /** Server-relative path of the notebook whose store holds the runs. */
    path: string;
    /** Run ids; the first is the baseline. */
    runIds: string[];
    /** Labels of the runs, by id (name + short id). */
    labels?: { [runId: string]: string };
  }
}

type Section = 'outcome' | 'params' | 'metrics' | 'environment';

/** What differs between runs, as a main-area widget body. */
export class DiffView extends Widget {
  constructor(options: DiffView.IOptions) {
    super();
    this.addClass('nbtrack-diff');
    this._path = options.path;
    this._runIds = options.runIds;
    this._labels = options.labels ?? {};
    this.node.tabIndex = 0;
    this.node.textContent = 'Loading the diff…';
    void this.load();
  }

  /** The runs compared, baseline first. */
  get runIds(): string[] {
    return [...this._runIds];
  }

  /** Fetch the diff (everything; the view filters) and render it. */
  async load(): Promise<void> {
    try {
      if (this._runIds.length === 2) {
        const reply = await fetchDiff(
          this._path,
          this._runIds[0],
          this._runIds[1],
          true
        );
        this._diffs = [reply.diff];
      } else {
        const reply = await fetchCompare(this._path, this._runIds, true);
        this._diffs = reply.diffs;
        for (const run of reply.runs) {
          this._labels[run.run_id] ??= run.name
            ? `${run.name} ${shortId(run.run_id)}`
            : shortId(run.run_id);
        }
      }
      this._error = null;
    } catch (error) {
      this._error = messageOf(error);
    }
    this.render();
  }

  /** Show every value (true) or only what differs (false). */
  setShowAll(showAll: boolean): void {
    this._showAll = showAll;
    this.render();
  }

  render(): void {
    if (this._error !== null) {
      this.node.replaceChildren(
        h('div', { className: 'nbtrack-error', role: 'alert' }, this._error)
      );
      return;
    }
    const toggle = h('input', {
      type: 'checkbox',
      className: 'nbtrack-show-all'
    });
    toggle.checked = this._showAll;
    toggle.addEventListener('change', () => this.setShowAll(toggle.checked));
    const differs = this._diffs.some(diff => diff.differs);
    const header = h(
      'header',
      { className: 'nbtrack-diff-header' },
      h(
        'h2',
        {},
        this._runIds.length === 2
          ? 'Diff of '
          : `Compare ${this._runIds.length} runs: `,
        this._runIds.map((id, index) =>
          h(
            'span',
            { className: `nbtrack-run-chip nbtrack-run-${index}` },
            this._label(id)
          )
        )
      ),
      h('label', { className: 'nbtrack-toggle' }, toggle, ' Show everything'),
      differs
        ? ''
        : h('p', { className: 'nbtrack-same' }, 'These runs do not differ.')
    );
    this.node.replaceChildren(
      header,
      this._changeSection('Outcome', 'outcome'),
      this._changeSection('Parameters', 'params'),
      this._changeSection('Metrics', 'metrics'),
      this._dataSection(),
      this._codeSection(),
      this._changeSection('Packages', 'environment')
    );
  }

  private _label(runId: string): string {
    return this._labels[runId] ?? shortId(runId);
  }

  private _visible(kind: string): boolean {
    return this._showAll || kind !== 'same';
  }

  /** Keys of a section in first-seen order, with the change of each run against the baseline. */
  private _rows(section: Section): Map<string, (IChange | undefined)[]> {
    const rows = new Map<string, (IChange | undefined)[]>();
    this._diffs.forEach((diff, index) => {
      for (const change of diff[section]) {
        const row =
          rows.get(change.key) ??
          new Array<IChange | undefined>(this._diffs.length);
        row[index] = change;
        rows.set(change.key, row);
      }
    });
    for (const [key, changes] of rows) {
      if (
        !changes.some(
          change => change !== undefined && this._visible(change.kind)
        )
      ) {
        rows.delete(key);
      }
    }
    return rows;
  }

  private _changeSection(title: string, section: Section): HTMLElement {
    const rows = this._rows(section);
    const body = [...rows].map(([key, changes]) => {
      const first = changes.find(change => change !== undefined);
      const baseline =
        first && first.kind !== 'added' ? formatValue(first.a) : '';
      return h(
        'tr',
        { 'data-key': key },
        h('th', { scope: 'row' }, key),
        h('td', {}, baseline),
        changes.map(change => this._changeCell(change, section === 'metrics'))
      );
    });
    return this._section(
      title,
      section,
      rows.size,
      body.length
        ? h(
            'table',
            { className: 'nbtrack-diff-table' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                h('th', {}, section === 'environment' ? 'Package' : 'Name'),
                this._runIds.map(id => h('th', {}, this._label(id)))
              )
            ),
            h('tbody', {}, body)
          )
        : null
    );
  }

  private _changeCell(
    change: IChange | undefined,
    relative: boolean
  ): HTMLElement {
    if (change === undefined) {
      return h('td', {});
    }
    const value = change.kind === 'removed' ? '—' : formatValue(change.b);
    const delta =
      change.kind === 'changed' && change.delta !== undefined
        ? h(
            'span',
            {
              className: `nbtrack-delta ${toNumber(change.delta) > 0 ? 'nbtrack-up' : 'nbtrack-down'}`
            },
            ` ${formatDelta(change.delta)}`,
            relative &&
              change.relative !== undefined &&
              Number.isFinite(toNumber(change.relative))
              ? ` (${formatDelta(Number((toNumber(change.relative) * 100).toFixed(1)))}%)`
              : ''
          )
        : null;
    return h(
      'td',
      { className: `nbtrack-kind-${change.kind}`, title: change.kind },
      value,
      delta
    );
  }

  private _dataSection(): HTMLElement {
    const rows: HTMLElement[] = [];
    const seen = new Set<string>();
    this._diffs.forEach((diff, index) => {
      for (const change of diff.data) {
        if (!this._visible(change.kind)) {
          continue;
        }
        const key = `${change.role}:${change.path}`;
        if (index > 0 && seen.has(key) && change.kind === 'same') {
          continue;
        }
        seen.add(key);
        rows.push(this._dataRow(change, index));
      }
    });
    return this._section(
      'Data',
      'data',
      rows.length,
      rows.length
        ? h(
            'table',
            { className: 'nbtrack-diff-table' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                h('th', {}, 'Path'),
                h('th', {}, 'Role'),
                h('th', {}, this._label(this._runIds[0])),
                h('th', {}, 'Run'),
                h('th', {}, 'Change')
              )
            ),
            h('tbody', {}, rows)
          )
        : null
    );
  }

  private _dataRow(change: IDataChange, index: number): HTMLElement {
    const version = (side: IDataChange['a']): string =>
      side
        ? `${(side.hash ?? '').replace(/^[a-z0-9]+:/, '').slice(0, 10)}${
            side.size !== null ? ` · ${side.size.toLocaleString()} B` : ''
          }`
        : '—';
    const detail = change.detail
      ? h(
          'pre',
          { className: 'nbtrack-data-detail' },
          describeDetail(change.detail)
        )
      : null;
    return h(
      'tr',
      { className: `nbtrack-kind-${change.kind}`, 'data-path': change.path },
      h('th', { scope: 'row' }, change.path),
      h('td', {}, change.role),
      h('td', {}, version(change.a)),
      h(
        'td',
        {},
        h(
          'div',
          {},
          `${this._label(this._runIds[index + 1])}: ${version(change.b)}`
        ),
        detail
      ),
      h(
        'td',
        {},
        change.kind,
        change.size_delta ? ` (${formatDelta(change.size_delta)} B)` : ''
      )
    );
  }

  private _codeSection(): HTMLElement {
    const blocks = this._diffs
      .map((diff, index) => ({ diff, index }))
      .filter(({ diff }) => diff.code);
    const content = blocks.map(({ diff, index }) =>
      h(
        'div',
        { className: 'nbtrack-code-block' },
        this._diffs.length > 1
          ? h(
              'div',
              { className: 'nbtrack-code-title' },
              this._label(this._runIds[index + 1])
            )
          : null,
        h(
          'pre',
          { className: 'nbtrack-code-diff' },
          diff.code.split('\n').map(line =>
            h(
              'div',
              {
                className:
                  line.startsWith('+++') || line.startsWith('---')
                    ? 'nbtrack-line-file'
                    : line.startsWith('+')
                      ? 'nbtrack-line-added'
                      : line.startsWith('-')
                        ? 'nbtrack-line-removed'
                        : line.startsWith('@@')
                          ? 'nbtrack-line-hunk'
                          : 'nbtrack-line'
              },
              line || ' '
            )
          )
        )
      )
    );
    return this._section(
      'Code',
      'code',
      blocks.length,
      content.length ? h('div', {}, content) : null,
      'The cell code is the same.'
    );
  }

  private _section(
    title: string,
    id: string,
    count: number,
    content: HTMLElement | null,
    emptyText?: string
  ): HTMLElement {
    return h(
      'section',
      { className: 'nbtrack-diff-section', 'data-section': id },
      h(
        'h3',
        {},
        title,
        count ? h('span', { className: 'nbtrack-count' }, ` ${count}`) : ''
      ),
      content ??
        h(
          'p',
          { className: 'nbtrack-same' },
          emptyText ?? (this._showAll ? 'Nothing recorded.' : 'No difference.')
        )
    );
  }

  private _path: string;
  private _runIds: string[];
  private _labels: { [runId: string]: string };
  private _diffs: IRunDiff[] = [];
  private _showAll = false;
  private _error: string | null = null;
}

/** The inside-the-data comparison as short lines (`rows: 100 → 120`). */
export function describeDetail(detail: { [key: string]: unknown }): string {
  // The data diff carries its own short lines for people; show those when present.
  const summary = detail.summary;
  if (
    Array.isArray(summary) &&
    summary.every(line => typeof line === 'string')
  ) {
    return (summary as string[]).join('\n');
  }
  return Object.entries(detail)
    .map(([key, value]) => {
      if (value && typeof value === 'object' && !Array.isArray(value)) {
        const inner = value as { [key: string]: unknown };
        if ('a' in inner && 'b' in inner) {
          return `${key}: ${JSON.stringify(inner.a)} → ${JSON.stringify(inner.b)}`;
        }
      }
      return `${key}: ${JSON.stringify(value)}`;
    })
    .join('\n');
}
