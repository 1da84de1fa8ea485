/**
 * The diff view: what differs between two runs (or several, each against the
 * first): outcome, parameters, metrics with deltas, data versions, cell code and
 * packages. Only what differs by default; one toggle shows everything.
 */
import { IChange, IDataChange, toNumber } from './api';
import { DiffSection, RunDiffModel } from './diffmodel';
import { h } from './dom';
import { FetchView } from './fetchview';
import { formatDelta, formatValue } from './format';

export namespace DiffView {
  export interface IOptions {
    /** What to show; the view owns it. */
    model: RunDiffModel;
  }
}

/** What differs between runs, as a main-area widget body. */
export class DiffView extends FetchView<RunDiffModel> {
  constructor(options: DiffView.IOptions) {
    super(options.model, 'Loading the diff…');
    this.addClass('nbtrack-diff');
  }

  protected renderContent(): HTMLElement[] {
    const model = this.model;
    const toggle = h('input', {
      type: 'checkbox',
      className: 'nbtrack-show-all'
    });
    toggle.checked = model.showAll;
    toggle.addEventListener('change', () => model.setShowAll(toggle.checked));
    const runIds = model.runIds;
    const header = h(
      'header',
      { className: 'nbtrack-diff-header' },
      h(
        'h2',
        {},
        runIds.length === 2 ? 'Diff of ' : `Compare ${runIds.length} runs: `,
        runIds.map((id, index) =>
          h(
            'span',
            { className: `nbtrack-run-chip nbtrack-run-${index}` },
            model.label(id)
          )
        )
      ),
      h('label', { className: 'nbtrack-toggle' }, toggle, ' Show everything'),
      model.differs
        ? ''
        : h('p', { className: 'nbtrack-same' }, 'These runs do not differ.')
    );
    return [
      header,
      this._changeSection('Outcome', 'outcome'),
      this._changeSection('Parameters', 'params'),
      this._changeSection('Metrics', 'metrics'),
      this._dataSection(),
      this._codeSection(),
      this._changeSection('Packages', 'environment')
    ];
  }

  private _changeSection(title: string, section: DiffSection): HTMLElement {
    const rows = this.model.changes(section);
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
                this.model.runIds.map(id => h('th', {}, this.model.label(id)))
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
    const rows = this.model
      .dataChanges()
      .map(({ runId, change }) => this._dataRow(change, runId));
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
                h('th', {}, this.model.label(this.model.runIds[0])),
                h('th', {}, 'Run'),
                h('th', {}, 'Change')
              )
            ),
            h('tbody', {}, rows)
          )
        : null
    );
  }

  private _dataRow(change: IDataChange, runId: string): HTMLElement {
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
        h('div', {}, `${this.model.label(runId)}: ${version(change.b)}`),
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
    const blocks = this.model.codeChanges();
    const content = blocks.map(({ runId, change: code }) =>
      h(
        'div',
        { className: 'nbtrack-code-block' },
        this.model.diffs.length > 1
          ? h(
              'div',
              { className: 'nbtrack-code-title' },
              this.model.label(runId)
            )
          : null,
        h(
          'pre',
          { className: 'nbtrack-code-diff' },
          code.split('\n').map(line =>
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
          emptyText ??
            (this.model.showAll ? 'Nothing recorded.' : 'No difference.')
        )
    );
  }
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
