/**
 * The diff view rendering its model, with api.ts (the only module that calls
 * the server) replaced by jest mocks.
 */
import * as api from '../api';
import { DiffView, describeDetail } from '../diff';
import { RunDiffModel } from '../diffmodel';
import { diff } from './fixtures';

jest.mock('../api', () => ({
  ...jest.requireActual('../api'),
  fetchDiff: jest.fn()
}));

const fetchDiff = jest.mocked(api.fetchDiff);

const [A, B] = ['a', 'b'].map(id => id.repeat(32));

describe('DiffView', () => {
  beforeEach(() => {
    jest.resetAllMocks();
  });

  const keys = (view: DiffView, section: string): (string | null)[] =>
    Array.from(
      view.node.querySelectorAll(`[data-section="${section}"] tr[data-key]`)
    ).map(row => row.getAttribute('data-key'));

  it('says it is loading, then shows what differs, and everything once asked', async () => {
    fetchDiff.mockResolvedValue({ a: A, b: B, diff: diff(A, B) });
    const view = new DiffView({
      model: new RunDiffModel({ path: 'nb.ipynb', runIds: [A, B] })
    });
    expect(view.node.textContent).toBe('Loading the diff…');

    await view.model.ready;

    expect(view.node.querySelector('h2')?.textContent).toBe(
      'Diff of aaaaaaaabbbbbbbb'
    );
    expect(keys(view, 'params')).toEqual(['lr']);
    expect(
      view.node.querySelector('[data-key="acc"] .nbtrack-delta')?.textContent
    ).toBe(' +0.1 (+12.5%)');
    expect(
      view.node.querySelector('[data-section="outcome"] p')?.textContent
    ).toBe('No difference.');

    const toggle = view.node.querySelector(
      'input.nbtrack-show-all'
    ) as HTMLInputElement;
    toggle.checked = true;
    toggle.dispatchEvent(new Event('change'));
    expect(keys(view, 'params')).toEqual(['lr', 'depth']);

    view.dispose();
    expect(view.model.isDisposed).toBe(true);
  });

  it("shows the server's message when the diff cannot be made", async () => {
    fetchDiff.mockRejectedValue(new Error("no run matches 'ffff'"));
    const view = new DiffView({
      model: new RunDiffModel({ path: 'nb.ipynb', runIds: [A, 'ffff'] })
    });
    await view.model.ready;
    expect(view.node.querySelector('[role="alert"]')?.textContent).toBe(
      "no run matches 'ffff'"
    );
  });
});

describe('describeDetail', () => {
  it('shows the lines a data diff writes for people', () => {
    const detail = {
      summary: ['rows 2 → 3', 'columns added: c'],
      rows: { a: 2, b: 3 }
    };
    expect(describeDetail(detail)).toBe('rows 2 → 3\ncolumns added: c');
  });

  it('falls back to the fields of a detail without a summary', () => {
    expect(describeDetail({ rows: { a: 2, b: 3 } })).toBe('rows: 2 → 3');
  });
});
