/**
 * The diff view's model driven for real, with api.ts (the only module that
 * calls the server) replaced by jest mocks.
 */
import * as api from '../api';
import { RunDiffModel } from '../diffmodel';
import { diff, fullRun as run } from './fixtures';

jest.mock('../api', () => ({
  ...jest.requireActual('../api'),
  fetchDiff: jest.fn(),
  fetchCompare: jest.fn()
}));

const fetchDiff = jest.mocked(api.fetchDiff);
const fetchCompare = jest.mocked(api.fetchCompare);

const [A, B, C] = ['a', 'b', 'c'].map(id => id.repeat(32));

describe('RunDiffModel', () => {
  beforeEach(() => {
    jest.resetAllMocks();
  });

  it('loads the diff of two runs, the same values too, and shows only what differs', async () => {
    fetchDiff.mockResolvedValue({ a: A, b: B, diff: diff(A, B) });
    const model = new RunDiffModel({
      path: 'proj/train.ipynb',
      runIds: [A, B],
      labels: { [A]: 'train aaaaaaaa' }
    });
    expect(model.isLoading).toBe(true);

    await model.ready;

    expect(fetchDiff).toHaveBeenCalledWith('proj/train.ipynb', A, B, true);
    expect(fetchCompare).not.toHaveBeenCalled();
    expect(model.isLoading).toBe(false);
    expect(model.error).toBeNull();
    expect(model.differs).toBe(true);
    expect([...model.changes('params').keys()]).toEqual(['lr']);
    expect(model.changes('params').get('lr')).toEqual([
      { key: 'lr', kind: 'changed', a: 0.1, b: 0.01, delta: -0.09 }
    ]);
    expect(model.changes('metrics').get('acc')?.[0]?.relative).toBe(0.125);
    expect(model.changes('outcome').size).toBe(0);
    expect(
      model.dataChanges().map(({ runId, change }) => [runId, change.path])
    ).toEqual([[B, 'data/train.csv']]);
    expect(model.codeChanges()).toEqual([
      { runId: B, change: '--- a\n+++ b\n-lr = 0.1\n+lr = 0.01' }
    ]);
    expect(model.label(A)).toBe('train aaaaaaaa');
    expect(model.label(B)).toBe('bbbbbbbb');
  });

  it('shows every value once asked, and tells the view', async () => {
    fetchDiff.mockResolvedValue({ a: A, b: B, diff: diff(A, B) });
    const model = new RunDiffModel({ path: 'nb.ipynb', runIds: [A, B] });
    await model.ready;
    const changed = jest.fn();
    model.changed.connect(changed);

    model.setShowAll(true);

    expect(changed).toHaveBeenCalledTimes(1);
    expect(model.showAll).toBe(true);
    expect([...model.changes('params').keys()]).toEqual(['lr', 'depth']);
    expect([...model.changes('outcome').keys()]).toEqual(['status']);
    expect(model.dataChanges().map(({ change }) => change.path)).toEqual([
      'data/train.csv',
      'data/labels.csv'
    ]);
  });

  it('compares several runs against the first, named as the server names them', async () => {
    const third = diff(A, C);
    third.params = [{ key: 'seed', kind: 'added', a: null, b: 1 }];
    fetchCompare.mockResolvedValue({
      baseline: run(A, 'train'),
      runs: [run(A, 'train'), run(B, null), run(C, 'sweep')],
      diffs: [diff(A, B), third]
    });
    const model = new RunDiffModel({
      path: 'nb.ipynb',
      runIds: [A, B, C],
      labels: { [C]: 'my label' }
    });
    await model.ready;

    expect(fetchCompare).toHaveBeenCalledWith('nb.ipynb', [A, B, C], true);
    expect(model.runIds.map(id => model.label(id))).toEqual([
      'train aaaaaaaa',
      'bbbbbbbb',
      'my label'
    ]);
    // One row per key, with each run's change against the baseline in its column.
    const params = model.changes('params');
    expect([...params.keys()]).toEqual(['lr', 'seed']);
    expect(params.get('lr')?.map(change => change?.kind)).toEqual([
      'changed',
      undefined
    ]);
    expect(params.get('seed')?.map(change => change?.kind)).toEqual([
      undefined,
      'added'
    ]);
    expect(model.codeChanges().map(({ runId }) => runId)).toEqual([B, C]);

    // A file the same in every run shows once, under the first run.
    model.setShowAll(true);
    expect(
      model.dataChanges().map(({ runId, change }) => [runId, change.path])
    ).toEqual([
      [B, 'data/train.csv'],
      [B, 'data/labels.csv'],
      [C, 'data/train.csv']
    ]);
  });

  it('says when the runs do not differ', async () => {
    const same = diff(A, B);
    same.differs = false;
    same.params = [{ key: 'depth', kind: 'same', a: 3, b: 3 }];
    same.metrics = [];
    same.data = [];
    same.code = '';
    fetchDiff.mockResolvedValue({ a: A, b: B, diff: same });
    const model = new RunDiffModel({ path: 'nb.ipynb', runIds: [A, B] });
    await model.ready;

    expect(model.differs).toBe(false);
    expect(model.changes('params').size).toBe(0);
    expect(model.dataChanges()).toEqual([]);
    expect(model.codeChanges()).toEqual([]);
  });

  it("carries the server's message when the diff cannot be made", async () => {
    fetchDiff.mockRejectedValue(new Error("no run matches 'ffff'"));
    const model = new RunDiffModel({ path: 'nb.ipynb', runIds: [A, 'ffff'] });
    const changed = jest.fn();
    model.changed.connect(changed);

    await model.ready;

    expect(model.isLoading).toBe(false);
    expect(model.error).toBe("no run matches 'ffff'");
    expect(model.diffs).toEqual([]);
    expect(changed).toHaveBeenCalledTimes(1);
  });
});
