/**
 * The filter bar the sidebar list and the Runs tab share: which runs (this
 * notebook or the whole store), text, condition, kind, and the chips that say
 * what narrows the list now (a notebook run, a chart's brush).
 */
import { searchIcon } from '@jupyterlab/ui-components';

import { RunKind } from './api';
import { h } from './dom';
import { shortId } from './format';
import { RunsModel, RunsScope } from './model';

/** Milliseconds the text filter waits for typing to pause. */
const TEXT_DEBOUNCE = 250;

/**
 * The filter inputs, bound to `model`; `update()` follows the model (chips, scope).
 * `extra` (the Runs tab's "Group by") goes at the end of the condition's row.
 */
export function buildFilters(
  model: RunsModel,
  extra?: HTMLElement
): {
  node: HTMLElement;
  update: () => void;
} {
  const text = h('input', {
    type: 'search',
    className: 'jp-mod-styled nbtrack-filter-text',
    placeholder: 'Filter: name, id, notebook, param…',
    'aria-label': 'Filter runs by text'
  });
  let timer = 0;
  text.addEventListener('input', () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(
      () => model.setQuery({ text: text.value.trim() }),
      TEXT_DEBOUNCE
    );
  });
  const where = h('input', {
    type: 'text',
    className: 'jp-mod-styled nbtrack-filter-where',
    placeholder: 'Condition: lr < 0.1 and acc > 0.9',
    title: 'A SQL condition over params and metrics; Enter applies it',
    'aria-label': 'Filter runs by condition'
  });
  where.addEventListener('keydown', event => {
    if (event.key === 'Enter') {
      model.setQuery({ where: where.value.trim() });
    }
  });
  where.addEventListener('change', () =>
    model.setQuery({ where: where.value.trim() })
  );
  const kind = h(
    'select',
    {
      className: 'jp-mod-styled nbtrack-filter-kind',
      'aria-label': 'Which runs'
    },
    h('option', { value: 'cell' }, 'Cell runs'),
    h('option', { value: 'notebook' }, 'Notebook runs'),
    h('option', { value: 'all' }, 'All runs')
  );
  kind.addEventListener('change', () =>
    model.setKind(kind.value as RunKind | 'all')
  );
  const scope = h(
    'select',
    {
      className: 'jp-mod-styled nbtrack-filter-scope',
      'aria-label': 'Runs of',
      title: 'The runs of the notebook in front, or of the whole store'
    },
    h('option', { value: 'notebook' }, 'This notebook'),
    h('option', { value: 'store' }, 'Whole store')
  );
  scope.addEventListener('change', () =>
    model.setScope(scope.value as RunsScope)
  );
  const chips = h('div', { className: 'nbtrack-chips' });
  const icon = searchIcon.element({ className: 'nbtrack-filter-icon' });
  const node = h(
    'div',
    { className: 'nbtrack-filters' },
    h('div', { className: 'nbtrack-filter-row' }, icon, text, scope, kind),
    h('div', { className: 'nbtrack-filter-row' }, where, extra),
    chips
  );

  const chip = (
    label: string,
    clear: () => void,
    name: string
  ): HTMLElement => {
    const button = h(
      'button',
      {
        className: 'jp-Button jp-mod-minimal nbtrack-chip-clear',
        title: 'Remove this filter',
        'aria-label': `Remove the filter: ${label}`
      },
      '×'
    );
    button.addEventListener('click', clear);
    return h(
      'span',
      { className: `nbtrack-chip nbtrack-chip-${name}` },
      label,
      button
    );
  };

  const update = (): void => {
    scope.value = model.scope;
    scope.disabled = !model.path.endsWith('.ipynb');
    kind.value = model.query.kind ?? 'cell';
    const parts: HTMLElement[] = [];
    const parent = model.query.parent_id;
    if (parent) {
      parts.push(
        chip(
          `Cell runs of notebook run ${shortId(parent)}`,
          () => model.setQuery({ parent_id: undefined }),
          'parent'
        )
      );
    }
    const sweep = model.query.sweep;
    if (sweep) {
      parts.push(
        chip(
          `Cell runs of sweep ${sweep}`,
          () => model.setQuery({ sweep: undefined }),
          'sweep'
        )
      );
    }
    if (model.isLocallyFiltered) {
      parts.push(
        chip(
          `Brushed: ${model.total.toLocaleString()} runs`,
          () => model.setLocalRuns(null),
          'brush'
        )
      );
    }
    chips.replaceChildren(...parts);
    chips.hidden = parts.length === 0;
  };
  update();
  return { node, update };
}
