/**
 * The drift view's state from a report as the server sends it: table rows per
 * column with schema changes, a statistic over versions, and the pickers.
 */
import * as api from '../api';
import { IColumnDrift, IDriftReport, IVersionDrift } from '../api';
import {
  DriftModel,
  driftRows,
  driftTables,
  statisticSeries,
  versionLabel
} from '../driftmodel';

jest.mock('../api', () => ({
  ...jest.requireActual('../api'),
  fetchDrift: jest.fn()
}));
const fetchDrift = jest.mocked(api.fetchDrift);

function column(
  name: string,
  psi: number | null,
  flags: string[] = []
): IColumnDrift {
  return {
    name,
    kind: 'numeric',
    type: 'DOUBLE',
    type_ref: 'DOUBLE',
    psi,
    ks: psi === null ? null : psi / 2,
    ks_p: 0.5,
    js: null,
    null: 0,
    null_ref: 0,
    flags,
    note: null,
    drifted: flags.length > 0
  };
}

function version(
  run: string,
  reference: boolean,
  columns: IColumnDrift[] | null,
  path = 'data/t.csv'
): IVersionDrift {
  return {
    path,
    run_id: run.repeat(32),
    started: '2026-12-01T10:00:00',
    hash: `xxh128:${run}`,
    runs: reference ? 2 : 1,
    reference,
    note: columns === null && !reference ? 'blob gone' : null,
    drift:
      columns === null
        ? null
        : {
            rows_ref: 100,
            rows: 120,
            columns_added: ['new'],
            columns_removed: [],
            columns_retyped: [],
            columns,
            drifted: columns.filter(c => c.drifted).map(c => c.name),
            schema_changed: true
          }
  };
}

function report(): IDriftReport {
  const retyped = {
    ...column('k', 0.01),
    type: 'VARCHAR',
    flags: ['type'],
    drifted: true
  };
  return {
    title: 'drift of data/t.csv',
    thresholds: { psi: 0.2, ks_p: 0.01, js: 0.1, nulls: 0.05 },
    versions: [
      version('a', true, null),
      version('b', false, [
        column('x', 0.05),
        { ...column('age', 0.4, ['psi']), null: 0.1 }
      ]),
      version('c', false, null),
      version('d', false, [column('x', 0.3, ['psi']), retyped])
    ],
    drifted: true
  };
}

describe('drift rows', () => {
  it('lists schema changes first, then every column with why it drifted', () => {
    const rows = driftRows(report().versions[1]);
    expect(rows.map(r => [r.column, r.drifted, r.note])).toEqual([
      ['new', true, 'column added'],
      ['x', false, ''],
      ['age', true, 'psi']
    ]);
    expect(rows[2].nulls).toBe('0.0% → 10.0%');
    expect(driftRows(report().versions[3])[2].note).toBe(
      'type DOUBLE → VARCHAR'
    );
    expect(driftRows(report().versions[2])).toEqual([]);
  });

  it('follows a statistic over versions, the reference at zero, a gap where not compared', () => {
    const over = statisticSeries(report(), 'data/t.csv', 'psi');
    expect(over.labels).toHaveLength(4);
    expect(over.labels[0]).toBe(
      'aaaaaaaa 2026-12-01 10:00 · 2 runs (reference)'
    );
    expect(over.series).toEqual([
      { column: 'x', values: [0, 0.05, null, 0.3] },
      { column: 'age', values: [0, 0.4, null, null] },
      { column: 'k', values: [0, null, null, 0.01] }
    ]);
    expect(versionLabel(report().versions[1])).toBe(
      'bbbbbbbb 2026-12-01 10:00'
    );
  });

  it('reads NaN statistics (an empty column) as NaN in the table and a gap in the lines', () => {
    const empty = report();
    empty.versions[1].drift!.columns[0].psi = 'NaN';
    expect(driftRows(empty.versions[1])[1].psi).toBeNaN();
    expect(
      statisticSeries(empty, 'data/t.csv', 'psi').series[0].values[1]
    ).toBeNull();
  });

  it('keeps the tables of a folder apart', () => {
    const folder = report();
    folder.versions.push(version('e', true, null, 'data/other.csv'));
    expect(driftTables(folder)).toEqual(['data/t.csv', 'data/other.csv']);
  });
});

describe('DriftModel', () => {
  it('shows the newest version against the reference and follows the pickers', async () => {
    fetchDrift.mockResolvedValue(report());
    const model = new DriftModel({ path: 'nb.ipynb', file: 'data/t.csv' });
    await model.ready;
    expect(fetchDrift).toHaveBeenCalledWith(
      'nb.ipynb',
      'data/t.csv',
      undefined
    );
    expect(model.version?.run_id).toBe('d'.repeat(32));
    model.setVersion(0);
    expect(model.version?.run_id).toBe('b'.repeat(32));
    model.setStatistic('ks');
    expect(model.statistic).toBe('ks');
  });
});
