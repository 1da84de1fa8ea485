/**
 * The runs the comparison views draw, and the parallel coordinates' brush, driven
 * for real over a RunsModel, with api.ts (the only module that calls the server)
 * replaced by jest mocks.
 */
import * as api from '../api';
import { summaryRun } from './fixtures';
import { parallelData } from '../comparemodel';
import { CompareState } from '../comparestate';
import { RunsModel } from '../model';

jest.mock('../api', () => ({
  ...jest.requireActual('../api'),
  fetchStatus: jest.fn(),
  fetchRuns: jest.fn()
}));

const fetchStatus = jest.mocked(api.fetchStatus);
const fetchRuns = jest.mocked(api.fetchRuns);

function run(id: string, lr: number, acc: number): api.IRunSummary {
  return summaryRun(id.padEnd(32, '0'), {
    started_at: `2026-01-01T10:0${id.length}:00Z`,
    params: { lr },
    metrics: { acc }
  });
}

const RUNS = [run('a', 0.1, 0.9), run('b', 0.01, 0.8), run('c', 0.001, 0.7)];

function lastCall(): [string, api.IRunQuery] {
  const calls = fetchRuns.mock.calls;
  return calls[calls.length - 1];
}

function lastStatusCall(): string {
  const calls = fetchStatus.mock.calls;
  return calls[calls.length - 1][0];
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await new Promise(resolve => setTimeout(resolve, 20));
  }
}

describe('CompareState', () => {
  let model: RunsModel;
  let state: CompareState;

  beforeEach(async () => {
    jest.resetAllMocks();
    fetchStatus.mockResolvedValue({
      project_root: '/srv/proj',
      project_path: 'proj',
      store_path: '/srv/proj/.nbtrack/runs.duckdb',
      exists: true,
      change_token: 't1',
      rerun_available: true
    });
    fetchRuns.mockImplementation(async (_path, query) => ({
      runs: RUNS.slice(
        query.offset ?? 0,
        (query.offset ?? 0) + (query.limit ?? 50)
      ),
      total: RUNS.length,
      param_keys: ['lr'],
      metric_keys: ['acc'],
      limit: query.limit ?? 50,
      offset: query.offset ?? 0
    }));
    model = new RunsModel({ pageSize: 10, interval: 60_000 });
    state = new CompareState(model);
    model.setPath('proj/train.ipynb');
    state.activate();
    await settle();
  });

  afterEach(() => {
    state.dispose();
    model.dispose();
  });

  /** Brush the metric axis around the best run, as a drag on the chart does. */
  function brushBest(): void {
    const data = parallelData(state.runs, ['lr'], 'acc');
    state.brush(data, 1, [[0.85, 1]], state.runs);
  }

  it('narrows the table to the brushed runs, and a cleared axis shows them all', () => {
    expect(state.runs).toHaveLength(3);
    brushBest();
    expect(model.isLocallyFiltered).toBe(true);
    expect(model.total).toBe(1);
    expect(model.runAt(0)?.run_id).toBe(RUNS[0].run_id);
    state.brush(parallelData(state.runs, ['lr'], 'acc'), 1, [], state.runs);
    expect(model.isLocallyFiltered).toBe(false);
    expect(model.total).toBe(3);
  });

  it('clears the brush and the filter when the scope changes to the whole store', async () => {
    brushBest();
    const changed = jest.fn();
    state.changed.connect(changed);
    model.setScope('store');
    // At once: the table unfiltered, no brush, and no stale runs to draw a brush on
    expect(model.isLocallyFiltered).toBe(false);
    expect(state.brushes.size).toBe(0);
    expect(state.runs).toHaveLength(0);
    expect(changed).toHaveBeenCalled();
    await settle();
    // then the whole store's runs, fetched again
    expect(state.runs).toHaveLength(3);
    expect(lastCall()[1]).toMatchObject({ notebook: false });
  });

  it('clears the brush and the filter when another store (notebook) comes in front', async () => {
    brushBest();
    model.setPath('other/eval.ipynb');
    expect(model.isLocallyFiltered).toBe(false);
    expect(state.brushes.size).toBe(0);
    await settle();
    expect(lastCall()[0]).toBe('other/eval.ipynb');
    expect(state.runs).toHaveLength(3);
  });

  it('fetches the runs again when the view comes back to a store it left before that one loaded', async () => {
    // The tab moves to another notebook, whose store has not answered yet, and back
    // (a page reload restoring the Runs tab does this): the runs cleared on the way
    // must be fetched again, or the charts stay empty ("No metric logged yet").
    let answer: (value: api.IStoreStatus) => void = () => undefined;
    fetchStatus.mockImplementationOnce(
      () => new Promise(resolve => (answer = resolve))
    );
    model.setPath('other/eval.ipynb');
    expect(state.runs).toHaveLength(0);
    await settle();
    expect(lastStatusCall()).toBe('other/eval.ipynb');
    model.setPath('proj/train.ipynb');
    await settle();
    answer({
      project_root: '/srv/other',
      project_path: 'other',
      store_path: '/srv/other/.nbtrack/runs.duckdb',
      exists: true,
      change_token: 't9',
      rerun_available: true
    });
    // The model looks at the store in front at once (not a poll interval later),
    // and the views get its runs.
    await settle();
    expect(model.status?.change_token).toBe('t1');
    expect(state.loading).toBe(false);
    expect(state.runs).toHaveLength(3);
    expect(lastCall()[0]).toBe('proj/train.ipynb');
  });

  it('keeps the brush while only the selection changes', () => {
    brushBest();
    model.toggleSelected(RUNS[0].run_id);
    expect(model.isLocallyFiltered).toBe(true);
    expect(state.brushes.size).toBe(1);
  });
});
