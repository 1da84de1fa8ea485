/**
 * The run detail view's model driven for real, with api.ts (the only module
 * that calls the server) replaced by jest mocks.
 */
import * as api from '../api';
import { RunDetailModel } from '../detailmodel';
import { fullRun } from './fixtures';

jest.mock('../api', () => ({
  ...jest.requireActual('../api'),
  fetchRun: jest.fn(),
  fetchMetrics: jest.fn()
}));

const fetchRun = jest.mocked(api.fetchRun);
const fetchMetrics = jest.mocked(api.fetchMetrics);

const [A, B] = ['a', 'b'].map(id => id.repeat(32));

/** Run a logged loss at steps 0 and 10 and a final acc; run b logged loss without steps. */
const SERIES: { [runId: string]: api.IMetricSeries } = {
  [A]: {
    run_id: A,
    series: {
      loss: [
        { step: 0, value: 1.5, ts: 0 },
        { step: 10, value: 0.5, ts: 1 }
      ],
      acc: [{ step: null, value: 0.9, ts: 2 }]
    }
  },
  [B]: {
    run_id: B,
    series: {
      loss: [
        { step: null, value: 2, ts: 0 },
        { step: null, value: 'NaN', ts: 1 }
      ]
    }
  }
};

describe('RunDetailModel', () => {
  beforeEach(() => {
    jest.resetAllMocks();
    fetchRun.mockImplementation(async (_path, ref) =>
      fullRun(ref, ref === A ? 'train' : null)
    );
    fetchMetrics.mockImplementation(async (_path, ref) => SERIES[ref]);
  });

  it('loads the record and the metric curves of each run', async () => {
    const model = new RunDetailModel({ path: 'proj/nb.ipynb', runIds: [A, B] });
    const changed = jest.fn();
    model.changed.connect(changed);
    expect(model.isLoading).toBe(true);
    expect(model.runs).toEqual([]);

    await model.ready;

    expect(fetchRun.mock.calls).toEqual([
      ['proj/nb.ipynb', A],
      ['proj/nb.ipynb', B]
    ]);
    expect(fetchMetrics.mock.calls).toEqual([
      ['proj/nb.ipynb', A],
      ['proj/nb.ipynb', B]
    ]);
    expect(changed).toHaveBeenCalledTimes(1);
    expect(model.isLoading).toBe(false);
    expect(model.error).toBeNull();
    expect(model.runs.map(run => [run.run_id, run.name])).toEqual([
      [A, 'train'],
      [B, null]
    ]);
    expect(model.metricKeys).toEqual(['acc', 'loss']);
  });

  it('puts a point at its step, or at its position when logged without one', async () => {
    const model = new RunDetailModel({ path: 'nb.ipynb', runIds: [A, B] });
    await model.ready;

    const [a, b] = model.curves('loss');
    expect([a.runId, a.label]).toEqual([A, 'train aaaaaaaa']);
    expect(a.points).toEqual([
      [0, 1.5],
      [10, 0.5]
    ]);
    // A NaN cannot be drawn: left out, as the Runs tab's curves leave it out.
    expect(b.points).toEqual([[0, 2]]);
    // A run that did not log a metric has a curve with no points.
    expect(model.curves('acc').map(curve => curve.points.length)).toEqual([
      1, 0
    ]);
  });

  it('puts the wall time on x when asked, in epoch milliseconds', async () => {
    const model = new RunDetailModel({ path: 'nb.ipynb', runIds: [A, B] });
    await model.ready;

    expect(model.curves('loss', 'time')[0].points).toEqual([
      [0, 1.5],
      [1000, 0.5]
    ]);
  });

  it("carries the server's message when a run cannot be read", async () => {
    fetchRun.mockRejectedValue(new Error("no run matches 'ffff'"));
    const model = new RunDetailModel({ path: 'nb.ipynb', runIds: ['ffff'] });

    await model.ready;

    expect(model.isLoading).toBe(false);
    expect(model.error).toBe("no run matches 'ffff'");
    expect(model.runs).toEqual([]);
    expect(model.metricKeys).toEqual([]);
  });

  it('tells nobody once disposed (its view was closed)', async () => {
    const model = new RunDetailModel({ path: 'nb.ipynb', runIds: [A] });
    const changed = jest.fn();
    model.changed.connect(changed);

    model.dispose();
    await model.ready;

    expect(model.isDisposed).toBe(true);
    expect(changed).not.toHaveBeenCalled();
  });
});
