/**
 * The lineage graph built from a payload as the server sends it: one node per
 * content, one edge per link, left-to-right layers; and the model driven with a
 * mocked api.ts.
 */
import * as api from '../api';
import { ILineage, ILineageData, ILineageRun } from '../api';
import { LineageModel, buildLineageGraph } from '../lineagemodel';

jest.mock('../api', () => ({
  ...jest.requireActual('../api'),
  fetchLineage: jest.fn()
}));
const fetchLineage = jest.mocked(api.fetchLineage);

const [PREP, TRAIN, EVAL, TRAIN2] = ['1', '2', '3', '4'].map(c => c.repeat(32));

function run(id: string, name: string, notebook: string): ILineageRun {
  return {
    run_id: id,
    kind: 'cell',
    name,
    status: 'finished',
    started_at: null,
    notebook_path: notebook,
    cell_id: 'c',
    parent_id: null
  };
}

function row(
  runId: string,
  role: 'input' | 'output',
  path: string,
  hash: string | null
): ILineageData {
  return {
    run_id: runId,
    path,
    role,
    hash,
    size: 10,
    kind: 'file',
    cached: true
  };
}

/** 01_prepare wrote data/train.csv, 02_train read it (twice: two runs) and wrote a model evaluate read. */
function payload(): ILineage {
  return {
    run_id: TRAIN,
    depth: 1,
    runs: [
      run(TRAIN, 'train', 'examples/02_train.ipynb'),
      run(PREP, 'prepare', 'examples/01_prepare.ipynb'),
      run(EVAL, 'evaluate', 'examples/02_train.ipynb'),
      run(TRAIN2, 'train', 'examples/02_train.ipynb')
    ],
    data: [
      row(TRAIN, 'input', 'data/train.csv', 'xxh128:aa'),
      row(TRAIN, 'output', 'models/m.pkl', 'xxh128:bb'),
      row(TRAIN, 'output', 'log.txt', null),
      row(PREP, 'output', 'data/train.csv', 'xxh128:aa'),
      // The same content read under another path, and the same row twice.
      row(TRAIN2, 'input', 'copy/train.csv', 'xxh128:aa'),
      row(PREP, 'output', 'data/train.csv', 'xxh128:aa'),
      row(EVAL, 'input', 'models/m.pkl', 'xxh128:bb')
    ],
    values: [
      { source: TRAIN, target: EVAL, name: 'X_test' },
      { source: TRAIN, target: EVAL, name: 'model_path' }
    ],
    models: [
      {
        name: 'clf',
        version: 2,
        hash: 'xxh128:bb',
        run_id: TRAIN,
        flavor: 'pickle',
        archived: false,
        aliases: ['champion']
      }
    ],
    more: { 'xxh128:aa': 3 }
  };
}

describe('buildLineageGraph', () => {
  it('makes one node per run, per content and per model version', () => {
    const graph = buildLineageGraph(payload());
    const ids = graph.nodes.map(n => n.id).sort();
    expect(ids).toEqual(
      [
        `data:${TRAIN}:output:log.txt`,
        'data:xxh128:aa',
        'data:xxh128:bb',
        'model:clf/2',
        `run:${EVAL}`,
        `run:${PREP}`,
        `run:${TRAIN2}`,
        `run:${TRAIN}`
      ].sort()
    );
    const csv = graph.nodes.find(n => n.id === 'data:xxh128:aa');
    expect(csv?.paths).toEqual(['data/train.csv', 'copy/train.csv']);
    expect(csv?.label).toBe('data/train.csv (+1)');
    expect(csv?.more).toBe(3);
    const center = graph.nodes.filter(n => n.center).map(n => n.id);
    expect(center).toEqual([`run:${TRAIN}`]);
    expect(graph.nodes.find(n => n.id === `run:${PREP}`)?.label).toBe(
      '01_prepare · prepare 11111111'
    );
    expect(graph.nodes.find(n => n.id === 'model:clf/2')?.label).toBe(
      'clf v2 @champion'
    );
  });

  it('links writer → content → reader, values between runs, and models; each link once', () => {
    const graph = buildLineageGraph(payload());
    const edges = graph.edges.map(e =>
      `${e.kind} ${e.source} ${e.target} ${e.label}`.trim()
    );
    expect(edges.sort()).toEqual(
      [
        `writes run:${PREP} data:xxh128:aa`,
        `reads data:xxh128:aa run:${TRAIN}`,
        `reads data:xxh128:aa run:${TRAIN2}`,
        `writes run:${TRAIN} data:xxh128:bb`,
        `writes run:${TRAIN} data:${TRAIN}:output:log.txt`,
        `reads data:xxh128:bb run:${EVAL}`,
        `value run:${TRAIN} run:${EVAL} X_test, model_path`,
        `registers run:${TRAIN} model:clf/2`,
        `loads model:clf/2 run:${EVAL}`
      ].sort()
    );
  });

  it('lays the graph out left to right: producers, their data, the run, its outputs', () => {
    const graph = buildLineageGraph(payload());
    const layer = (id: string): number | undefined =>
      graph.nodes.find(n => n.id === id)?.layer;
    expect(layer(`run:${PREP}`)).toBe(0);
    expect(layer('data:xxh128:aa')).toBe(1);
    expect(layer(`run:${TRAIN}`)).toBe(2);
    expect(layer('data:xxh128:bb')).toBe(3);
    expect(layer(`run:${EVAL}`)).toBe(4);
    // Nodes of one column do not overlap.
    const places = graph.nodes.map(n => `${n.layer}:${n.row}`);
    expect(new Set(places).size).toBe(places.length);
  });

  it('survives a cycle (a run rewrote what it read) and a run alone', () => {
    const cycle = payload();
    cycle.data.push(row(EVAL, 'output', 'data/train.csv', 'xxh128:aa'));
    const graph = buildLineageGraph(cycle);
    expect(graph.nodes.every(n => Number.isFinite(n.layer))).toBe(true);

    const alone = buildLineageGraph({
      ...payload(),
      runs: [run(TRAIN, null as unknown as string, 'x.ipynb')],
      data: [],
      values: [],
      models: []
    });
    expect(alone.nodes.map(n => n.label)).toEqual(['x · 22222222']);
    expect(alone.edges).toEqual([]);
  });
});

describe('LineageModel', () => {
  beforeEach(() => fetchLineage.mockReset());

  it('fetches the lineage once, builds the graph and describes a picked content', async () => {
    fetchLineage.mockResolvedValue(payload());
    const model = new LineageModel({
      path: 'nb.ipynb',
      runId: TRAIN,
      depth: 2
    });
    await model.ready;
    expect(fetchLineage).toHaveBeenCalledWith('nb.ipynb', TRAIN, 2);
    expect(model.graph.nodes).toHaveLength(8);
    let changes = 0;
    model.changed.connect(() => (changes += 1));
    model.select('data:xxh128:aa');
    expect(changes).toBe(1);
    expect(model.selected?.kind).toBe('data');
    expect(model.describe(model.selected!)).toEqual([
      'read as data/train.csv by 02_train · train 22222222',
      'written as data/train.csv by 01_prepare · prepare 11111111',
      'read as copy/train.csv by 02_train · train 44444444'
    ]);
  });

  it('keeps the server message when the run is unknown', async () => {
    fetchLineage.mockRejectedValue(new Error('no run matches ffff'));
    const model = new LineageModel({ path: '', runId: 'ffff' });
    await model.ready;
    expect(model.error).toBe('no run matches ffff');
    expect(model.graph).toEqual({ nodes: [], edges: [] });
  });
});
