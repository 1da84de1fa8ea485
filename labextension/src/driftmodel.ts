/**
 * The drift view's state: every recorded version of a tabular file against the
 * reference version (nbtrack.driftreport), per column; which table, version and
 * statistic the user looks at.
 */
import {
  IDriftReport,
  IVersionDrift,
  JSONFloat,
  fetchDrift,
  toNumber
} from './api';
import { FetchModel } from './fetchmodel';
import { shortId } from './format';

export type DriftStatistic = 'psi' | 'ks' | 'js';

/** Name, meaning and the threshold key of each statistic. */
export const STATISTICS: { [key in DriftStatistic]: string } = {
  psi: 'Population Stability Index',
  ks: 'Kolmogorov–Smirnov statistic',
  js: 'Jensen–Shannon distance'
};

/** One row of the drift table: a column, or a schema change. */
export interface IDriftRow {
  column: string;
  type: string;
  psi: number | null;
  ks: number | null;
  ks_p: number | null;
  js: number | null;
  nulls: string;
  drifted: boolean;
  /** Why it counts as drifted, a schema change, or the statistic's note. */
  note: string;
}

const percent = (share: JSONFloat): string =>
  `${(toNumber(share) * 100).toFixed(1)}%`;

/** A statistic as a number (NaN travels as "NaN"), or null when there is none. */
const stat = (value: JSONFloat | null | undefined): number | null =>
  value === null || value === undefined ? null : toNumber(value);

/** A version as the pickers show it: run, date, how many runs saw that content. */
export function versionLabel(version: IVersionDrift): string {
  const who = version.run_id
    ? shortId(version.run_id)
    : (version.hash ?? '?').slice(-8);
  const when = version.started
    ? version.started.slice(0, 16).replace('T', ' ')
    : '';
  const runs = version.runs > 1 ? ` · ${version.runs} runs` : '';
  return `${who}${when ? ` ${when}` : ''}${runs}${version.reference ? ' (reference)' : ''}`;
}

/** The tables a report covers (a folder version holds several), in report order. */
export function driftTables(report: IDriftReport): string[] {
  return [...new Set(report.versions.map(version => version.path))];
}

/** The versions of one table, oldest first. */
export function tableVersions(
  report: IDriftReport,
  table: string
): IVersionDrift[] {
  return report.versions.filter(version => version.path === table);
}

/** The table rows of one version: schema changes first, then every column in order. */
export function driftRows(version: IVersionDrift): IDriftRow[] {
  const drift = version.drift;
  if (drift === null) {
    return [];
  }
  const schema = (column: string, note: string): IDriftRow => ({
    column,
    type: '',
    psi: null,
    ks: null,
    ks_p: null,
    js: null,
    nulls: '',
    drifted: true,
    note
  });
  const rows: IDriftRow[] = [
    ...drift.columns_added.map(name => schema(name, 'column added')),
    ...drift.columns_removed.map(name => schema(name, 'column removed'))
  ];
  for (const column of drift.columns) {
    const retyped = column.type_ref !== null && column.type !== column.type_ref;
    const notes = [
      retyped ? `type ${column.type_ref} → ${column.type}` : '',
      column.flags.filter(flag => flag !== 'type').join(', '),
      column.note ?? ''
    ].filter(Boolean);
    rows.push({
      column: column.name,
      type: column.type ?? '',
      psi: stat(column.psi),
      ks: stat(column.ks),
      ks_p: stat(column.ks_p),
      js: stat(column.js),
      nulls:
        column.null === column.null_ref
          ? percent(column.null)
          : `${percent(column.null_ref)} → ${percent(column.null)}`,
      drifted: column.drifted,
      note: notes.join('; ')
    });
  }
  return rows;
}

/**
 * One statistic over the versions of a table, per column: `[label, value]` points in
 * time order, the reference at 0 (no drift from itself), a missing value as null.
 */
export function statisticSeries(
  report: IDriftReport,
  table: string,
  statistic: DriftStatistic
): {
  labels: string[];
  series: { column: string; values: (number | null)[] }[];
} {
  const versions = tableVersions(report, table);
  const columns: string[] = [];
  for (const version of versions) {
    for (const column of version.drift?.columns ?? []) {
      if (!columns.includes(column.name)) {
        columns.push(column.name);
      }
    }
  }
  return {
    labels: versions.map(versionLabel),
    series: columns.map(name => ({
      column: name,
      values: versions.map(version => {
        if (version.reference) {
          return 0;
        }
        const found = version.drift?.columns.find(
          column => column.name === name
        );
        const value = found ? stat(found[statistic]) : null;
        return value !== null && Number.isFinite(value) ? value : null;
      })
    }))
  };
}

export namespace DriftModel {
  export interface IOptions {
    path: string;
    /** The data file (or folder of tables), as runs recorded it. */
    file: string;
    /** The reference: a run or a hash prefix (default: the first version). */
    ref?: string;
  }
}

/** The drift report of one file and what the view shows of it. */
export class DriftModel extends FetchModel<IDriftReport> {
  constructor(options: DriftModel.IOptions) {
    super(() => fetchDrift(options.path, options.file, options.ref));
    this.file = options.file;
  }

  readonly file: string;

  get report(): IDriftReport | null {
    return this.data;
  }

  get tables(): string[] {
    return this.data ? driftTables(this.data) : [];
  }

  get table(): string {
    return this._table ?? this.tables[0] ?? '';
  }

  /** The versions of the shown table, oldest first. */
  get versions(): IVersionDrift[] {
    return this.data ? tableVersions(this.data, this.table) : [];
  }

  /** The version compared with the reference (default: the newest). */
  get version(): IVersionDrift | null {
    const compared = this.versions.filter(version => !version.reference);
    return compared[this._index ?? compared.length - 1] ?? null;
  }

  get statistic(): DriftStatistic {
    return this._statistic;
  }

  setTable(table: string): void {
    this._table = table;
    this._index = null;
    this._changed.emit();
  }

  /** Pick the n-th compared (non-reference) version. */
  setVersion(index: number): void {
    this._index = index;
    this._changed.emit();
  }

  setStatistic(statistic: DriftStatistic): void {
    this._statistic = statistic;
    this._changed.emit();
  }

  private _table: string | null = null;
  private _index: number | null = null;
  private _statistic: DriftStatistic = 'psi';
}
