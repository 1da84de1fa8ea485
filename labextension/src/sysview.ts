/**
 * A run's system metrics as time-series lines (zoomable, hover for values) and its
 * end-of-run figures; a section of the run detail view.
 */
import { IMetricSeries } from './api';
import { h } from './dom';
import { formatNumber } from './format';
import { systemCharts, systemFacts } from './sysmodel';
import { ChartSet } from './viewcharts';

/** The system section of one run: charts drawn into `charts` (owned by the caller). */
export function systemSection(
  series: IMetricSeries,
  charts: ChartSet
): HTMLElement {
  const groups = systemCharts(series);
  const facts = systemFacts(series);
  const section = h(
    'section',
    { className: 'nbtrack-diff-section', 'data-section': 'system' },
    h('h3', {}, 'System metrics')
  );
  if (groups.length === 0 && facts.length === 0) {
    section.append(
      h(
        'p',
        { className: 'nbtrack-same' },
        'No system metrics: the run was too short for a sample, or was tracked with --no-system.'
      )
    );
    return section;
  }
  if (facts.length) {
    section.append(
      h(
        'p',
        { className: 'nbtrack-sys-facts' },
        facts.map(([name, value]) =>
          h(
            'span',
            { className: 'nbtrack-sys-fact' },
            `${name} ${formatNumber(value)}`
          )
        )
      )
    );
  }
  const grid = h('div', { className: 'nbtrack-charts' });
  for (const group of groups) {
    const host = h('div', {
      className: 'nbtrack-sys-chart',
      'data-chart': group.title
    });
    grid.append(
      h(
        'figure',
        { className: 'nbtrack-chart' },
        h(
          'figcaption',
          { className: 'nbtrack-chart-title' },
          `${group.title} (${group.unit})`
        ),
        host
      )
    );
    void charts.mount(host, {
      tooltip: { trigger: 'axis' },
      legend: { show: group.lines.length > 1, top: 0 },
      grid: {
        left: 56,
        right: 16,
        top: group.lines.length > 1 ? 28 : 12,
        bottom: 50
      },
      xAxis: { type: 'time' },
      yAxis: { type: 'value', scale: true },
      dataZoom: [{ type: 'inside' }, { type: 'slider', height: 14, bottom: 6 }],
      series: group.lines.map(line => ({
        type: 'line',
        name: line.label,
        data: line.points,
        showSymbol: line.points.length < 30,
        sampling: 'lttb'
      }))
    });
  }
  section.append(grid);
  return section;
}
