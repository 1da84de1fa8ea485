/**
 * The drift view of a data file: pick a version (against the reference) and a
 * statistic; a bar per column, the table of every column, and the statistic over
 * all versions as lines.
 */
import { h } from './dom';
import {
  DriftModel,
  DriftStatistic,
  IDriftRow,
  STATISTICS,
  driftRows,
  statisticSeries,
  versionLabel
} from './driftmodel';
import { FetchView } from './fetchview';
import { formatNumber } from './format';
import { themeColor } from './charts';
import { ChartSet } from './viewcharts';

const cell = (value: number | null): string =>
  value === null ? '' : formatNumber(value);

/** The drift of one file; owns its model. */
export class DriftView extends FetchView<DriftModel> {
  constructor(model: DriftModel) {
    super(model, 'Computing drift…');
    this.addClass('nbtrack-drift');
  }

  dispose(): void {
    this._chartSet?.clear();
    super.dispose();
  }

  render(): void {
    this._chartSet?.clear(); // undefined during the base constructor's first render
    super.render();
  }

  protected renderContent(): (Node | string)[] {
    const model = this.model;
    const report = model.report;
    if (report === null) {
      return [];
    }
    const charts = (this._chartSet = this._chartSet ?? new ChartSet());
    const version = model.version;
    const rows = version ? driftRows(version) : [];
    const compared = model.versions.filter(v => !v.reference);
    const reference = model.versions.find(v => v.reference);

    const select = (
      label: string,
      options: [string, string][],
      value: string,
      onChange: (value: string) => void
    ): HTMLElement => {
      const element = h(
        'select',
        { className: 'jp-mod-styled', 'aria-label': label },
        options.map(([key, text]) =>
          h('option', { value: key, selected: key === value }, text)
        )
      );
      element.addEventListener('change', () => onChange(element.value));
      return h(
        'label',
        { className: 'nbtrack-drift-pick' },
        `${label} `,
        element
      );
    };

    const controls = h(
      'div',
      { className: 'nbtrack-drift-controls' },
      model.tables.length > 1
        ? select(
            'Table',
            model.tables.map(t => [t, t]),
            model.table,
            t => model.setTable(t)
          )
        : null,
      select(
        'Version',
        compared.map((v, i) => [String(i), versionLabel(v)]),
        String(version ? compared.indexOf(version) : 0),
        i => model.setVersion(Number(i))
      ),
      select(
        'Statistic',
        (Object.keys(STATISTICS) as DriftStatistic[]).map(s => [
          s,
          STATISTICS[s]
        ]),
        model.statistic,
        s => model.setStatistic(s as DriftStatistic)
      )
    );

    const bars = h('div', { className: 'nbtrack-drift-chart' });
    const lines = h('div', { className: 'nbtrack-drift-chart' });
    const statistic = model.statistic;
    const threshold =
      statistic === 'ks' ? undefined : report.thresholds[statistic];
    const columnRows = rows.filter(row => row.type !== '');
    if (columnRows.length) {
      void charts.mount(bars, {
        tooltip: { trigger: 'axis' },
        legend: { show: false },
        grid: { left: 20, right: 20, top: 30, bottom: 10, containLabel: true },
        xAxis: {
          type: 'category',
          data: columnRows.map(row => row.column),
          axisLabel: { rotate: columnRows.length > 8 ? 40 : 0 }
        },
        yAxis: { type: 'value', name: statistic.toUpperCase() },
        series: [
          {
            type: 'bar',
            name: statistic.toUpperCase(),
            data: columnRows.map(row => ({
              value: row[statistic],
              itemStyle: {
                color: row.drifted
                  ? themeColor('--jp-error-color1', '#d32f2f')
                  : themeColor('--jp-brand-color1', '#1976d2')
              }
            })),
            markLine:
              threshold === undefined
                ? undefined
                : {
                    symbol: 'none',
                    label: { formatter: `threshold ${threshold}` },
                    lineStyle: {
                      color: themeColor('--jp-warn-color1', '#f57c00')
                    },
                    data: [{ yAxis: threshold }]
                  }
          }
        ]
      });
    }
    const over = statisticSeries(report, model.table, statistic);
    if (over.labels.length > 1 && over.series.length) {
      void charts.mount(lines, {
        tooltip: { trigger: 'axis' },
        legend: { type: 'scroll', top: 0 },
        grid: { left: 60, right: 20, top: 40, bottom: 60 },
        xAxis: { type: 'category', data: over.labels },
        yAxis: { type: 'value', name: statistic.toUpperCase() },
        series: over.series.map(s => ({
          type: 'line',
          name: s.column,
          data: s.values,
          connectNulls: false,
          showSymbol: over.labels.length < 50
        }))
      });
    }
    return [
      h('h2', {}, `Drift of ${model.file}`),
      h(
        'p',
        { className: 'nbtrack-hint' },
        `${model.versions.length} version(s); reference ${reference ? versionLabel(reference) : '?'}. ` +
          `Flags: PSI > ${report.thresholds.psi}, KS p < ${report.thresholds.ks_p}, JS > ${report.thresholds.js}.`
      ),
      compared.length ? controls : '',
      version === null
        ? h(
            'p',
            { className: 'nbtrack-same' },
            'Only one version: nothing to compare yet.'
          )
        : version.drift === null
          ? h(
              'p',
              { className: 'nbtrack-same' },
              version.note ?? 'Not compared.'
            )
          : h(
              'div',
              {},
              h(
                'p',
                {},
                `Rows ${version.drift.rows_ref.toLocaleString()} → ${version.drift.rows.toLocaleString()}; ` +
                  `${version.drift.drifted.length} of ${version.drift.columns.length} column(s) drifted.`
              ),
              columnRows.length ? bars : '',
              this._table(rows)
            ),
      over.labels.length > 1
        ? h('h3', {}, `${STATISTICS[statistic]} over versions`)
        : '',
      over.labels.length > 1 ? lines : ''
    ];
  }

  private _table(rows: IDriftRow[]): HTMLElement {
    return h(
      'table',
      { className: 'nbtrack-diff-table nbtrack-drift-table' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Column', 'Type', 'PSI', 'KS', 'KS p', 'JS', 'Nulls', ''].map(t =>
            h('th', {}, t)
          )
        )
      ),
      h(
        'tbody',
        {},
        rows.map(row =>
          h(
            'tr',
            {
              className: row.drifted ? 'nbtrack-drifted' : '',
              'data-column': row.column
            },
            h('th', { scope: 'row' }, row.column),
            h('td', {}, row.type),
            h('td', {}, cell(row.psi)),
            h('td', {}, cell(row.ks)),
            h('td', {}, cell(row.ks_p)),
            h('td', {}, cell(row.js)),
            h('td', {}, row.nulls),
            h('td', {}, row.drifted ? `⚠ ${row.note}` : row.note)
          )
        )
      )
    );
  }

  private _chartSet: ChartSet | undefined;
}
