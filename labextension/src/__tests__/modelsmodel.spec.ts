/**
 * The Models view's state: models by name, a model's versions newest first with
 * their aliases, the alias history as sentences, and alias moves that name where
 * the view saw the alias (so the server can refuse a move made meanwhile).
 */
import * as api from '../api';
import { IModelDetail, IModelVersion, IRegisteredModel } from '../api';
import {
  ModelsModel,
  historyRows,
  modelRows,
  signatureText,
  versionRows
} from '../modelsmodel';

jest.mock('../api', () => ({
  ...jest.requireActual('../api'),
  fetchModels: jest.fn(),
  fetchModel: jest.fn(),
  moveAlias: jest.fn()
}));
const fetchModels = jest.mocked(api.fetchModels);
const fetchModel = jest.mocked(api.fetchModel);
const moveAlias = jest.mocked(api.moveAlias);

function model(
  name: string,
  aliases: { [a: string]: number }
): IRegisteredModel {
  return {
    name,
    created_at: null,
    updated_at: null,
    description: null,
    tags: {},
    versions: 3,
    latest_version: 3,
    latest_flavor: 'sklearn',
    aliases
  };
}

function version(n: number, inputs = 0): IModelVersion {
  return {
    name: 'churn',
    version: n,
    version_id: `v${n}`,
    uri: `models:/churn/${n}`,
    flavor: 'sklearn',
    hash: `xxh128:${n}`,
    size: 2048,
    file_name: 'model.skops',
    created_at: `2026-12-0${n}T10:00:00Z`,
    run_id: String(n).repeat(32),
    source_path: null,
    signature: inputs
      ? {
          inputs: Array.from({ length: inputs }, (_, i) => ({
            name: `f${i}`,
            type: 'double'
          })),
          outputs: [
            { type: 'tensor', 'tensor-spec': { dtype: 'int64', shape: [-1] } }
          ]
        }
      : null,
    env: {},
    description: null,
    tags: {},
    archived: false,
    aliases: []
  };
}

function detail(): IModelDetail {
  return {
    model: model('churn', { champion: 2, challenger: 3, stable: 2 }),
    versions: [version(1), version(3, 6), version(2, 2)],
    alias_history: [
      mv('champion', 1, null, 1, '2026-12-01T10:00:00Z'),
      mv('champion', 2, 1, 2, '2026-12-02T10:00:00Z'),
      mv('challenger', 1, null, 3, '2026-12-03T10:00:00Z'),
      mv('old', 1, 1, null, '2026-12-03T11:00:00Z')
    ]
  };
}

function mv(
  alias: string,
  seq: number,
  from: number | null,
  to: number | null,
  at: string
): api.IAliasMove {
  return {
    name: 'churn',
    alias,
    seq,
    at,
    from_version: from,
    to_version: to,
    host: 'box',
    user: 'ana',
    move_id: `${alias}${seq}`
  };
}

describe('models grouping', () => {
  it('lists models by name with their aliases', () => {
    const rows = modelRows([model('zeta', {}), model('churn', { b: 1, a: 2 })]);
    expect(rows.map(r => [r.model.name, r.aliases])).toEqual([
      ['churn', '@a v2 @b v1'],
      ['zeta', '']
    ]);
  });

  it('puts versions newest first, each with the aliases on it now', () => {
    const rows = versionRows(detail());
    expect(rows.map(r => [r.version.version, r.aliases])).toEqual([
      [3, ['challenger']],
      [2, ['champion', 'stable']],
      [1, []]
    ]);
    expect(rows[0].signature).toBe(
      '6 inputs: f0 double, f1 double, f2 double, f3 double, … (2 more) → int64[-1]'
    );
    expect(signatureText(version(1))).toBe('no signature');
  });

  it('tells the alias history newest first, who moved it included', () => {
    expect(historyRows(detail()).map(r => r.text)).toEqual([
      '@old removed from v1 by ana@box',
      '@challenger set on v3 by ana@box',
      '@champion moved v1 → v2 by ana@box',
      '@champion set on v1 by ana@box'
    ]);
  });
});

describe('ModelsModel', () => {
  beforeEach(() => {
    jest.resetAllMocks();
    fetchModels.mockResolvedValue([model('churn', { champion: 2 })]);
    fetchModel.mockResolvedValue(detail());
  });

  const loaded = async (m: ModelsModel): Promise<void> => {
    await m.ready;
    while (m.detail === null && m.detailError === null) {
      await new Promise(resolve => setTimeout(resolve, 1));
    }
  };

  it('opens on the first model and moves an alias from where it saw it', async () => {
    const m = new ModelsModel({ path: 'nb.ipynb' });
    await loaded(m);
    expect(m.selected).toBe('churn');
    expect(m.aliasVersion('champion')).toBe(2);
    moveAlias.mockResolvedValue(
      mv('champion', 3, 2, 3, '2026-12-04T00:00:00Z')
    );
    await m.moveAlias('champion', 3);
    expect(moveAlias).toHaveBeenCalledWith(
      'nb.ipynb',
      'churn',
      'champion',
      3,
      2
    );
    await m.moveAlias('fresh', 1);
    expect(moveAlias).toHaveBeenLastCalledWith(
      'nb.ipynb',
      'churn',
      'fresh',
      1,
      null
    );
    expect(fetchModel).toHaveBeenCalledTimes(3); // reloaded after each move
  });

  it('reloads after a refused move and passes the server message on', async () => {
    const m = new ModelsModel({ path: '', name: 'churn' });
    await loaded(m);
    moveAlias.mockRejectedValue(
      new Error('churn@champion moved since it was read')
    );
    await expect(m.moveAlias('champion', 1)).rejects.toThrow('moved since');
    expect(fetchModel).toHaveBeenCalledTimes(2);
    expect(m.detail).not.toBeNull();
  });

  it('shows why a model cannot be read', async () => {
    fetchModel.mockRejectedValue(new Error("no model 'gone'"));
    const m = new ModelsModel({ path: '', name: 'gone' });
    await loaded(m);
    expect(m.detailError).toBe("no model 'gone'");
  });
});
