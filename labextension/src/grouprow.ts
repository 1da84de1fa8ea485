/**
 * A group's row in the Runs tab's table: the open/close toggle, the notebook run
 * or sweep it stands for (a link to its runs, as `nbtrack ls --parent ID` lists
 * them), the count, the params its runs share and every metric summarised.
 */
import { h } from './dom';
import { formatNumber, formatTime, formatValue } from './format';
import { ITableGroup, groupTitle } from './groupmodel';
import { RunGroupsState } from './groupstate';
import { IColumn } from './model';

/** What a click on a group row's parts does. */
export interface IGroupRowActions {
  /** Show the runs of the group's notebook run or sweep (the table filters by it). */
  follow: (group: ITableGroup) => void;
}

/** The row of `group` under `columns` (the table's grid `template`). */
export function groupRow(
  index: number,
  group: ITableGroup,
  state: RunGroupsState,
  columns: IColumn[],
  template: string,
  actions: IGroupRowActions
): HTMLElement {
  const expanded = state.isExpanded(group.key);
  const toggle = h(
    'button',
    {
      className: 'jp-Button jp-mod-minimal nbtrack-group-toggle',
      'aria-expanded': expanded ? 'true' : 'false',
      'aria-label': `${expanded ? 'Hide' : 'Show'} the runs of ${groupTitle(group)}`
    },
    expanded ? '▾' : '▸'
  );
  const row = h(
    'div',
    {
      className: 'nbtrack-row nbtrack-group-row',
      role: 'row',
      'aria-rowindex': index + 1,
      'aria-expanded': expanded ? 'true' : 'false',
      'data-group': group.key,
      'data-count': group.runs.length
    },
    h('div', { className: 'nbtrack-cell' }, toggle),
    columns.map(column => groupCell(group, column, state, actions))
  );
  row.style.gridTemplateColumns = template;
  row.addEventListener('click', () => state.toggle(group.key));
  return row;
}

function groupCell(
  group: ITableGroup,
  column: IColumn,
  state: RunGroupsState,
  actions: IGroupRowActions
): HTMLElement {
  const cell = h('div', {
    className: `nbtrack-cell nbtrack-col-${column.group}`,
    role: 'gridcell',
    'data-column': column.id
  });
  const count = group.runs.length;
  switch (column.id) {
    case 'status':
      break;
    case 'name': {
      const title = groupTitle(group);
      if (group.id === null) {
        cell.append(h('span', { className: 'nbtrack-group-title' }, title));
      } else {
        const what = group.by === 'sweep' ? 'sweep' : 'notebook run';
        const link = h(
          'a',
          {
            className: `nbtrack-link nbtrack-group-link nbtrack-${group.by === 'sweep' ? 'sweep' : 'parent'}-link`,
            href: '#',
            'data-id': group.id,
            title: `Show the runs of ${what} ${group.id} (nbtrack ls --parent ${group.id})`
          },
          title
        );
        link.addEventListener('click', event => {
          event.preventDefault();
          event.stopPropagation();
          actions.follow(group);
        });
        cell.append(link);
      }
      cell.append(
        h(
          'span',
          { className: 'nbtrack-group-count' },
          ` · ${count.toLocaleString()} run${count === 1 ? '' : 's'}`
        )
      );
      break;
    }
    case 'started_at':
      cell.textContent = formatTime(group.latest || null);
      cell.title = `Newest run of the group: ${group.latest}`;
      break;
    default:
      if (column.group === 'param') {
        const value = state.summaries.param(group, column.label);
        if (value !== undefined) {
          cell.textContent = formatValue(value);
          cell.title = `${column.label} = ${formatValue(value)} in every run of the group`;
        } else {
          cell.title = `${column.label} varies within the group (or is not set)`;
        }
      } else if (column.group === 'metric') {
        const summary = state.summaries.metric(group, column.label);
        if (summary !== null) {
          const stat = state.stat;
          cell.textContent = formatNumber(summary[stat]);
          cell.dataset.stat = stat;
          cell.title =
            `${column.label} over ${summary.count} run${summary.count === 1 ? '' : 's'}: ` +
            `min ${formatNumber(summary.min)} · max ${formatNumber(summary.max)} · last ${formatNumber(summary.last)}`;
        }
      }
  }
  return cell;
}
