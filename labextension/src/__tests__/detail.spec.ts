/**
 * The run detail view rendering its model, with api.ts (the only module that
 * calls the server) replaced by jest mocks.
 */
import { CommandRegistry } from '@lumino/commands';

import * as api from '../api';
import { RunDetailView } from '../detail';
import { RunDetailModel } from '../detailmodel';
import { CommandIDs } from '../tokens';
import { fullRun } from './fixtures';

jest.mock('../api', () => ({
  ...jest.requireActual('../api'),
  fetchRun: jest.fn(),
  fetchMetrics: jest.fn(),
  fetchLineage: jest.fn(),
  fetchImages: jest.fn()
}));

const fetchRun = jest.mocked(api.fetchRun);
const fetchMetrics = jest.mocked(api.fetchMetrics);
const fetchLineage = jest.mocked(api.fetchLineage);
const fetchImages = jest.mocked(api.fetchImages);

const A = 'a'.repeat(32);

describe('RunDetailView', () => {
  beforeEach(() => {
    jest.resetAllMocks();
    fetchLineage.mockImplementation(async (_path, ref) => ({
      run_id: ref,
      depth: 1,
      runs: [],
      data: [],
      values: [],
      models: [],
      more: {}
    }));
    fetchImages.mockImplementation(async (_path, ref) => ({
      run_id: ref,
      images: [],
      total: 0
    }));
  });

  it('says it is loading, then shows the run, its curves and a button to its cell', async () => {
    fetchRun.mockResolvedValue({ ...fullRun(A, 'train'), params: { lr: 0.1 } });
    fetchMetrics.mockResolvedValue({
      run_id: A,
      series: { loss: [{ step: 0, value: 1, ts: 0 }] }
    });
    const commands = new CommandRegistry();
    const openCell = jest.fn();
    commands.addCommand(CommandIDs.openCell, { execute: openCell });
    const view = new RunDetailView({
      model: new RunDetailModel({ path: 'nb.ipynb', runIds: [A] }),
      commands
    });
    expect(view.node.textContent).toBe('Loading…');

    await view.model.ready;

    expect(view.node.querySelector('h2')?.textContent).toBe(
      'Run train aaaaaaaa'
    );
    expect(
      Array.from(view.node.querySelectorAll('figure[data-metric]')).map(
        figure => figure.getAttribute('data-metric')
      )
    ).toEqual(['loss']);
    const charts = (): Element =>
      view.node.querySelector('[data-section="charts"]')!;
    expect(charts().querySelector('figure')?.getAttribute('data-runs')).toBe(
      '1'
    );
    // Wall time on x, as in the Runs tab's curves: the charts are drawn again.
    const x = charts().querySelector('select') as HTMLSelectElement;
    x.value = 'time';
    x.dispatchEvent(new Event('change'));
    expect(charts().querySelector('h3')?.textContent).toBe(
      'Metrics by wall time'
    );
    expect(
      charts().querySelectorAll('figure[data-metric="loss"]')
    ).toHaveLength(1);
    expect(
      view.node.querySelector('[data-section="params"] td')?.textContent
    ).toBe('0.1');
    view.node.querySelector('button')?.click();
    expect(openCell).toHaveBeenCalledWith({ runId: A });
    view.dispose();
  });

  it('shows the system metrics, lineage and images of a single run', async () => {
    fetchRun.mockResolvedValue(fullRun(A, 'train'));
    fetchMetrics.mockResolvedValue({
      run_id: A,
      series: { 'system/peak_rss_mb': [{ step: 0, value: 512, ts: 0 }] }
    });
    const view = new RunDetailView({
      model: new RunDetailModel({ path: 'nb.ipynb', runIds: [A] }),
      commands: new CommandRegistry()
    });
    await view.model.ready;
    const text = (section: string): string =>
      view.node.querySelector(`[data-section="${section}"]`)?.textContent ?? '';
    // system/ series are not metric curves; their end-of-run figure is a fact.
    expect(view.node.querySelectorAll('figure[data-metric]')).toHaveLength(0);
    expect(text('system')).toContain('peak_rss_mb 512');
    expect(fetchLineage).toHaveBeenCalledWith('nb.ipynb', A, 1);
    expect(fetchImages).toHaveBeenCalledWith('nb.ipynb', A);
    await new Promise(resolve => setTimeout(resolve, 0));
    expect(text('lineage')).toContain('No other run wrote what this run read');
    expect(text('images')).toContain('This run wrote no image');
    view.dispose();
  });

  it("shows the server's message when a run cannot be read", async () => {
    fetchRun.mockRejectedValue(new Error("no run matches 'ffff'"));
    const view = new RunDetailView({
      model: new RunDetailModel({ path: 'nb.ipynb', runIds: ['ffff'] }),
      commands: new CommandRegistry()
    });
    await view.model.ready;
    expect(view.node.querySelector('[role="alert"]')?.textContent).toBe(
      "no run matches 'ffff'"
    );
  });
});
