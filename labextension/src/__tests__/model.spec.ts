/**
 * The runs model driven for real, with api.ts (the only module that calls the
 * server) replaced by jest mocks.
 */
import * as api from '../api';
import { summaryRun } from './fixtures';
import { RunsModel } from '../model';

jest.mock('../api', () => ({
  ...jest.requireActual('../api'),
  fetchStatus: jest.fn(),
  fetchRuns: jest.fn(),
  startRerun: jest.fn(),
  fetchJob: jest.fn()
}));

type IJob = api.IJob;
type IRunPage = api.IRunPage;
type IRunSummary = api.IRunSummary;
type IStoreStatus = api.IStoreStatus;

const fetchStatus = api.fetchStatus as jest.MockedFunction<
  typeof api.fetchStatus
>;
const fetchRuns = api.fetchRuns as jest.MockedFunction<typeof api.fetchRuns>;
const startRerun = api.startRerun as jest.MockedFunction<typeof api.startRerun>;
const fetchJob = api.fetchJob as jest.MockedFunction<typeof api.fetchJob>;

function run(id: string, minute: number, lr = 0.1): IRunSummary {
  return summaryRun(id.padEnd(32, '0'), {
    started_at: `2026-01-01T10:${String(minute).padStart(2, '0')}:00Z`,
    duration: 1.5,
    execution_count: 3,
    params: { lr, depth: 3, seed: 0, batch: 32 },
    metrics: { acc: 0.9 }
  });
}

function status(token: string): IStoreStatus {
  return {
    project_root: '/srv/proj',
    project_path: 'proj',
    store_path: '/srv/proj/.nbtrack/runs.duckdb',
    exists: true,
    change_token: token,
    rerun_available: true
  };
}

/** A fake store: `runs` newest first, served page by page like the server does. */
function serve(runs: IRunSummary[]): void {
  fetchRuns.mockImplementation(async (_path, query) => {
    const offset = query.offset ?? 0;
    const limit = query.limit ?? 50;
    const page: IRunPage = {
      runs: runs.slice(offset, offset + limit),
      total: runs.length,
      param_keys: ['batch', 'depth', 'lr', 'seed'],
      metric_keys: ['acc'],
      limit,
      offset
    };
    return page;
  });
}

function lastQuery(): api.IRunQuery {
  const calls = fetchRuns.mock.calls;
  return calls[calls.length - 1][1];
}

/** Let the poll's immediate tick and the requests it makes complete. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await new Promise(resolve => setTimeout(resolve, 20));
  }
}

describe('RunsModel', () => {
  let model: RunsModel;

  beforeEach(() => {
    jest.resetAllMocks();
    fetchStatus.mockResolvedValue(status('t1'));
    model = new RunsModel({ pageSize: 2, interval: 60_000, jobInterval: 5 });
  });

  afterEach(() => {
    model.dispose();
  });

  it('loads the store of the active notebook and its first page', async () => {
    serve([run('b', 2), run('a', 1)]);
    model.setPath('proj/train.ipynb');
    await settle();
    expect(fetchStatus).toHaveBeenCalledWith('proj/train.ipynb');
    expect(fetchRuns.mock.calls[0][0]).toBe('proj/train.ipynb');
    expect(fetchRuns.mock.calls[0][1]).toMatchObject({
      sort: 'started_at',
      descending: true,
      kind: 'cell',
      limit: 2,
      offset: 0
    });
    expect(model.total).toBe(2);
    expect(model.runAt(0)?.run_id).toBe(run('b', 2).run_id);
    expect(model.status?.project_path).toBe('proj');
    expect(model.error).toBeNull();
  });

  it('shows new runs when the change token moves, and only then', async () => {
    serve([run('a', 1)]);
    model.setPath('proj/train.ipynb');
    await settle();
    const calls = fetchRuns.mock.calls.length;

    await model.refresh();
    expect(fetchRuns.mock.calls.length).toBe(calls);

    serve([run('b', 2), run('a', 1)]);
    fetchStatus.mockResolvedValue(status('t2'));
    await model.refresh();
    expect(fetchRuns.mock.calls.length).toBe(calls + 1);
    expect(model.total).toBe(2);
    expect(model.runAt(0)?.run_id).toBe(run('b', 2).run_id);
  });

  it('fetches further pages only when their rows are shown', async () => {
    serve([run('e', 5), run('d', 4), run('c', 3), run('b', 2), run('a', 1)]);
    model.setPath('nb.ipynb');
    await settle();
    expect(fetchRuns).toHaveBeenCalledTimes(1);
    expect(model.runAt(4)).toBeUndefined(); // asks for page 2
    await settle();
    expect(fetchRuns.mock.calls[1][1]).toMatchObject({ offset: 4, limit: 2 });
    expect(model.runAt(4)?.run_id).toBe(run('a', 1).run_id);
    expect(model.total).toBe(5);
  });

  it('sends filters and sort to the server and starts again from the top', async () => {
    serve([run('a', 1)]);
    model.setPath('nb.ipynb');
    await settle();
    model.setQuery({ text: 'train', where: 'lr > 0.01' });
    await settle();
    expect(lastQuery()).toMatchObject({
      text: 'train',
      where: 'lr > 0.01',
      offset: 0
    });
    model.sortBy('params.lr');
    expect(model.query).toMatchObject({ sort: 'params.lr', descending: true });
    model.sortBy('params.lr');
    expect(model.query).toMatchObject({ sort: 'params.lr', descending: false });
    await settle();
    expect(lastQuery()).toMatchObject({
      sort: 'params.lr',
      descending: false
    });
  });

  it("reports the server's message when a request fails, and rejects so the poll backs off", async () => {
    serve([run('a', 1)]);
    model.setPath('nb.ipynb');
    await settle();
    fetchStatus.mockResolvedValue(status('t2'));
    fetchRuns.mockRejectedValue(new Error("bad filter 'lr >>': syntax error"));
    await expect(model.refresh()).rejects.toThrow('bad filter');
    expect(model.error).toContain('bad filter');

    serve([run('a', 1)]);
    await model.refresh(true);
    expect(model.error).toBeNull();
  });

  it('keeps the selection in order, oldest first for a diff, and drops it for another notebook', async () => {
    serve([run('c', 3), run('b', 2), run('a', 1)]);
    model.setPath('nb.ipynb');
    await settle();
    model.runAt(2);
    await settle();
    const [c, b, a] = [run('c', 3), run('b', 2), run('a', 1)].map(
      r => r.run_id
    );
    model.toggleSelected(c);
    model.toggleSelected(a);
    model.toggleSelected(b);
    expect(model.selection).toEqual([c, a, b]);
    expect(model.selectionOldestFirst()).toEqual([a, b, c]);
    model.toggleSelected(a);
    expect(model.selection).toEqual([c, b]);
    model.selectOnly(a);
    expect(model.selection).toEqual([a]);

    model.setPath('other/nb.ipynb');
    expect(model.selection).toEqual([]);
  });

  it('shows the params and metrics that vary among the newest runs first, until the user chooses', async () => {
    // Given runs that differ in lr and depth but share batch and seed
    serve([
      run('c', 3, 0.1),
      {
        ...run('b', 2, 0.01),
        params: { lr: 0.01, depth: 5, seed: 0, batch: 32 }
      }
    ]);
    model.setPath('nb.ipynb');
    await settle();
    // Then lr and depth lead, not the first keys by name
    expect(model.visibleParams).toEqual(['depth', 'lr']);
    const ids = model.columns.map(c => c.id);
    expect(ids.slice(0, 4)).toEqual([
      'status',
      'name',
      'params.depth',
      'params.lr'
    ]);
    // acc is the same in both runs: still shown, since no metric varies
    expect(ids).toContain('metrics.acc');
    expect(ids).toContain('rerun_of');
    expect(ids).toContain('parent_id');
    // The sidebar's compact list keeps a few of them
    expect(model.compactColumns.map(c => c.id)).toEqual([
      'status',
      'name',
      'params.depth',
      'params.lr',
      'metrics.acc',
      'started_at',
      'notebook_path'
    ]);
    model.setValueColumns(['lr', 'gone'], []);
    expect(model.visibleParams).toEqual(['lr']);
    expect(model.columns.filter(c => c.group === 'metric')).toEqual([]);
  });

  it('lists the runs of the notebook in front, or of the whole store on request', async () => {
    serve([run('a', 1)]);
    model.setPath('proj/train.ipynb');
    await settle();
    expect(model.scope).toBe('notebook');
    expect(lastQuery()).toMatchObject({ notebook: true });
    model.setScope('store');
    await settle();
    expect(lastQuery()).toMatchObject({ notebook: false });
    // A folder in front (no notebook) cannot narrow to a notebook
    model.setScope('notebook');
    model.setPath('proj');
    await settle();
    expect(model.notebookScoped).toBe(false);
    expect(lastQuery()).toMatchObject({ notebook: false });
  });

  it('narrows the table to the runs a brush kept, without asking the server', async () => {
    const runs = [run('c', 3), run('b', 2), run('a', 1)];
    serve(runs);
    model.setPath('nb.ipynb');
    await settle();
    const calls = fetchRuns.mock.calls.length;
    model.setLocalRuns([runs[2]]);
    expect(model.total).toBe(1);
    expect(model.serverTotal).toBe(3);
    expect(model.runAt(0)?.run_id).toBe(runs[2].run_id);
    model.setViewport(0, 10);
    expect(fetchRuns.mock.calls.length).toBe(calls);
    // A new query drops the brush
    model.setQuery({ parent_id: 'p1' });
    expect(model.isLocallyFiltered).toBe(false);
    await settle();
    expect(lastQuery()).toMatchObject({ parent_id: 'p1' });
  });

  it('follows a re-run job until it ends, then refreshes', async () => {
    serve([run('a', 1)]);
    model.setPath('nb.ipynb');
    await settle();
    const job: IJob = {
      job_id: 'j1',
      run_id: run('a', 1).run_id,
      state: 'running',
      created_at: 0,
      started_at: 0,
      ended_at: null,
      result: null,
      error: null,
      created: true
    };
    startRerun.mockResolvedValue(job);
    fetchJob.mockResolvedValue({
      ...job,
      state: 'finished',
      result: {
        original: run('a', 1).run_id,
        run_id: 'new'.padEnd(32, '0'),
        reproduced: true,
        status: 'finished',
        error: null,
        warnings: []
      }
    });
    const started = await model.rerun(run('a', 1).run_id);
    expect(started.state).toBe('running');
    expect(startRerun).toHaveBeenCalledWith('nb.ipynb', run('a', 1).run_id);
    const statusCalls = fetchStatus.mock.calls.length;
    await settle();
    expect(fetchJob).toHaveBeenCalledWith('j1');
    expect(model.jobs.get(run('a', 1).run_id)?.state).toBe('finished');
    expect(fetchStatus.mock.calls.length).toBeGreaterThan(statusCalls);
  });

  it('says why a re-run cannot start', async () => {
    serve([run('a', 1)]);
    model.setPath('nb.ipynb');
    await settle();
    startRerun.mockRejectedValue(
      new Error('run a0000000 records no notebook path')
    );
    await expect(model.rerun(run('a', 1).run_id)).rejects.toThrow(
      'no notebook path'
    );
    expect(model.error).toContain('no notebook path');
  });
});
