/**
 * The Runs tab's table grouped by notebook run or sweep, drawn for real (jsdom),
 * with api.ts (the only module that calls the server) mocked: group rows with
 * their count and summaries, children under an open group, links to the runs of
 * a notebook run or sweep, every run of the query grouped.
 */
import { Widget } from '@lumino/widgets';

import * as api from '../api';
import { summaryRun } from './fixtures';
import { RunGroupsState } from '../groupstate';
import { RunsModel } from '../model';
import { RunsTable } from '../table';

jest.mock('../api', () => ({
  ...jest.requireActual('../api'),
  fetchStatus: jest.fn(),
  fetchRuns: jest.fn()
}));

const fetchStatus = jest.mocked(api.fetchStatus);
const fetchRuns = jest.mocked(api.fetchRuns);

const P1 = '1'.repeat(32);
const P2 = '2'.repeat(32);

function run(
  id: string,
  fields: Partial<api.IRunSummary> = {}
): api.IRunSummary {
  return summaryRun(id.padEnd(32, '0'), { name: `train-${id}`, ...fields });
}

/** A sweep (s1) of two notebook runs with two cell runs each, and one interactive run; newest first. */
const CELLS = [
  run('d', { parent_id: P2, params: { lr: 0.01 }, metrics: { acc: 0.8 } }),
  run('c', { parent_id: P2, params: { lr: 0.01 }, metrics: { acc: 0.95 } }),
  run('b', { parent_id: P1, params: { lr: 0.1 }, metrics: { acc: 0.6 } }),
  run('a', { parent_id: P1, params: { lr: 0.1 }, metrics: { acc: 0.7 } }),
  run('e', { params: { lr: 1 }, metrics: { acc: 0.1 } })
];
const NOTEBOOK_RUNS = [P1, P2].map(id =>
  run(id, { kind: 'notebook', tags: { sweep: 's1' } })
);

function page(runs: api.IRunSummary[], query: api.IRunQuery): api.IRunPage {
  const offset = query.offset ?? 0;
  const limit = query.limit ?? 50;
  return {
    runs: runs.slice(offset, offset + limit),
    total: runs.length,
    param_keys: ['lr'],
    metric_keys: ['acc'],
    limit,
    offset
  };
}

async function frames(): Promise<void> {
  for (let i = 0; i < 6; i++) {
    await new Promise(resolve => setTimeout(resolve, 20));
  }
}

describe('the grouped runs table', () => {
  let model: RunsModel;
  let groups: RunGroupsState;
  let table: RunsTable;
  let served: api.IRunSummary[];

  beforeEach(async () => {
    jest.resetAllMocks();
    served = CELLS;
    fetchStatus.mockResolvedValue({
      project_root: '/p',
      project_path: '',
      store_path: '/p/.nbtrack/runs.duckdb',
      exists: true,
      change_token: 't',
      rerun_available: true
    });
    fetchRuns.mockImplementation(async (_path, query) => {
      if (query.kind === 'notebook') {
        return page(NOTEBOOK_RUNS, query);
      }
      if (query.sweep === 's1') {
        return page(
          CELLS.filter(r => r.parent_id),
          query
        );
      }
      return page(served, query);
    });
    model = new RunsModel({ interval: 60_000 });
    groups = new RunGroupsState(model);
    table = new RunsTable({
      model,
      groups,
      onOpenCell: () => undefined,
      onOpenRun: () => undefined
    });
    Widget.attach(table, document.body);
    model.setPath('train.ipynb');
    model.start();
    await frames();
  });

  afterEach(() => {
    table.dispose();
    groups.dispose();
    model.dispose();
  });

  const groupRows = (): HTMLElement[] =>
    Array.from(
      table.node.querySelectorAll<HTMLElement>(
        '.nbtrack-rows .nbtrack-group-row'
      )
    );
  const text = (row: HTMLElement, column: string): string =>
    row.querySelector(`[data-column="${column}"]`)?.textContent ?? '';

  it('shows a row per notebook run with the count, the shared params and each metric summarised', async () => {
    groups.setBy('parent');
    await frames();
    const rows = groupRows();
    expect(rows.map(row => text(row, 'name'))).toEqual([
      'Notebook run 22222222 · 2 runs',
      'Notebook run 11111111 · 2 runs',
      'Interactive runs · 1 run'
    ]);
    expect(rows.map(row => text(row, 'params.lr'))).toEqual([
      '0.01',
      '0.1',
      '1'
    ]);
    // max by default; min or the newest run's value on request
    expect(rows.map(row => text(row, 'metrics.acc'))).toEqual([
      '0.95',
      '0.7',
      '0.1'
    ]);
    groups.setStat('min');
    await frames();
    expect(groupRows().map(row => text(row, 'metrics.acc'))).toEqual([
      '0.8',
      '0.6',
      '0.1'
    ]);
    // No child rows until a group is opened
    expect(
      table.node.querySelectorAll('.nbtrack-row[data-run-id]')
    ).toHaveLength(0);
  });

  it('opens a group with a click: its runs show under it, and close again', async () => {
    groups.setBy('parent');
    await frames();
    groupRows()[1].click();
    await frames();
    const rows = Array.from(
      table.node.querySelectorAll<HTMLElement>('.nbtrack-rows .nbtrack-row')
    );
    expect(
      rows.map(row => row.dataset.runId?.slice(0, 1) ?? row.dataset.group)
    ).toEqual([`parent:${P2}`, `parent:${P1}`, 'b', 'a', 'parent:']);
    expect(rows[1].getAttribute('aria-expanded')).toBe('true');
    expect(rows[2].classList.contains('nbtrack-mod-child')).toBe(true);
    groupRows()[1].click();
    await frames();
    expect(
      table.node.querySelectorAll('.nbtrack-row[data-run-id]')
    ).toHaveLength(0);
  });

  it("groups a sweep's runs and leads to them, the rows `ls --parent SWEEP` lists", async () => {
    groups.setBy('sweep');
    await frames();
    expect(fetchRuns).toHaveBeenCalledWith(
      'train.ipynb',
      expect.objectContaining({ kind: 'notebook' })
    );
    const rows = groupRows();
    expect(rows.map(row => text(row, 'name'))).toEqual([
      'Sweep s1 · 4 runs',
      'Not in a sweep · 1 run'
    ]);
    expect(text(rows[0], 'metrics.acc')).toBe('0.95');
    // The params vary within the sweep: nothing to show for lr
    expect(text(rows[0], 'params.lr')).toBe('');

    rows[0].querySelector<HTMLElement>('.nbtrack-sweep-link')!.click();
    await frames();
    expect(model.query).toMatchObject({ sweep: 's1', kind: 'cell' });
    expect(groups.by).toBe('none');
    expect(
      Array.from(
        table.node.querySelectorAll<HTMLElement>('.nbtrack-row[data-run-id]')
      ).map(row => row.dataset.runId?.slice(0, 1))
    ).toEqual(['d', 'c', 'b', 'a']);
  });

  it('shows the groups of the first runs while the rest load', async () => {
    served = Array.from({ length: 3_000 }, (_, i) =>
      run(`r${i}`, { parent_id: i < 2_000 ? P2 : P1, metrics: { acc: i } })
    );
    let release: () => void = () => undefined;
    const held = new Promise<void>(resolve => (release = resolve));
    fetchRuns.mockImplementation(async (_path, query) => {
      if ((query.offset ?? 0) > 0 && query.limit === 10_000) {
        await held;
      }
      return page(served, query);
    });
    groups.setBy('parent');
    await frames();
    // The first 2,000 runs are grouped and shown; the note says more are coming
    expect(groups.loading).toBe(true);
    expect(groups.progress).toEqual([2_000, 3_000]);
    expect(groupRows().map(row => row.dataset.count)).toEqual(['2000']);
    release();
    await frames();
    expect(groups.loading).toBe(false);
    expect(groupRows().map(row => row.dataset.count)).toEqual(['2000', '1000']);
  });

  it('groups every run of the query, fetched in large pages, and the runs a brush kept', async () => {
    served = Array.from({ length: 25_000 }, (_, i) =>
      run(`r${i}`, { parent_id: i < 5 ? P1 : P2, metrics: { acc: i } })
    );
    model.setQuery({ text: 'r' });
    await frames();
    fetchRuns.mockClear();
    groups.setBy('parent');
    await frames();
    // A small first page (the first groups show at once), then the server's largest
    expect(fetchRuns.mock.calls.map(([, q]) => [q.offset, q.limit])).toEqual([
      [0, 2_000],
      [2_000, 10_000],
      [12_000, 10_000],
      [22_000, 10_000]
    ]);
    expect(groupRows().map(row => row.dataset.count)).toEqual(['5', '24995']);
    // A run deep in a group (no page of the flat table holds it) is found for the views
    expect(model.findRun(served[24_999].run_id)?.name).toBe('train-r24999');
    // A brush narrows the groups to the runs it kept, with no request
    fetchRuns.mockClear();
    model.setLocalRuns(served.slice(3, 7));
    await frames();
    expect(groupRows().map(row => row.dataset.count)).toEqual(['2', '2']);
    expect(fetchRuns).not.toHaveBeenCalled();
  });
});
