/**
 * The runs table drawn for real (jsdom), with api.ts mocked: re-runs are marked
 * with the original's id and the verdict, and a notebook run's id leads to its
 * cell runs.
 */
import { Widget } from '@lumino/widgets';

import * as api from '../api';
import { summaryRun } from './fixtures';
import { RunsModel } from '../model';
import { RunsTable, verdictClass } from '../table';

jest.mock('../api', () => ({
  ...jest.requireActual('../api'),
  fetchStatus: jest.fn(),
  fetchRuns: jest.fn()
}));

const fetchStatus = api.fetchStatus as jest.MockedFunction<
  typeof api.fetchStatus
>;
const fetchRuns = api.fetchRuns as jest.MockedFunction<typeof api.fetchRuns>;

function run(
  id: string,
  fields: Partial<api.IRunSummary> = {}
): api.IRunSummary {
  return summaryRun(id.padEnd(32, '0'), {
    params: { lr: 0.0001 },
    metrics: { acc: 0.9 },
    ...fields
  });
}

async function frames(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await new Promise(resolve => setTimeout(resolve, 20));
  }
}

describe('RunsTable', () => {
  let model: RunsModel;
  let table: RunsTable;

  beforeEach(async () => {
    jest.resetAllMocks();
    fetchStatus.mockResolvedValue({
      project_root: '/p',
      project_path: '',
      store_path: '/p/.nbtrack/runs.duckdb',
      exists: true,
      change_token: 't',
      rerun_available: true
    });
    const runs = [
      run('c', { rerun_of: 'a'.padEnd(32, '0'), rerun_verdict: 'reproduced' }),
      run('b', {
        rerun_of: 'a'.padEnd(32, '0'),
        parent_id: 'f'.padEnd(32, '0')
      }),
      // an older server: no rerun_verdict field at all
      run('a')
    ];
    delete (runs[2] as Partial<api.IRunSummary>).rerun_verdict;
    fetchRuns.mockImplementation(async (_path, query) => ({
      runs: query.parent_id ? [runs[1]] : runs,
      total: query.parent_id ? 1 : 3,
      param_keys: ['lr'],
      metric_keys: ['acc'],
      limit: 100,
      offset: 0
    }));
    model = new RunsModel({ interval: 60_000 });
    table = new RunsTable({
      model,
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
    model.dispose();
  });

  const cell = (row: number, column: string): HTMLElement =>
    table.node
      .querySelectorAll<HTMLElement>('.nbtrack-rows .nbtrack-row')
      [row].querySelector(`[data-column="${column}"]`)!;

  it('marks a re-run with its original and the verdict, and tolerates records without one', () => {
    expect(cell(0, 'rerun_of').textContent).toBe('a0000000reproduced');
    expect(
      cell(0, 'rerun_of').querySelector('.nbtrack-verdict-ok')
    ).not.toBeNull();
    expect(cell(1, 'rerun_of').textContent).toBe('a0000000');
    expect(cell(2, 'rerun_of').textContent).toBe('');
    // numbers in the shared format
    expect(cell(0, 'params.lr').textContent).toBe('0.0001');
  });

  it('leads from a notebook run id to its cell runs', async () => {
    const link = cell(1, 'parent_id').querySelector('a')!;
    expect(link.textContent).toBe('f0000000');
    link.click();
    await frames();
    expect(model.query.parent_id).toBe('f'.padEnd(32, '0'));
    expect(
      table.node.querySelectorAll('.nbtrack-rows .nbtrack-row[data-run-id]')
    ).toHaveLength(1);
  });

  it('reads verdicts at a glance', () => {
    expect(verdictClass('reproduced')).toBe('ok');
    expect(verdictClass('not reproduced')).toBe('moved');
    expect(verdictClass('differs: acc')).toBe('moved');
    expect(verdictClass('pending')).toBe('other');
  });
});
