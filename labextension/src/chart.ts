/**
 * A small SVG line chart for metric step series: several runs overlaid, axes
 * with round ticks, colours from JupyterLab's theme. No chart library needed.
 */
import { h, svg } from './dom';
import { formatNumber } from './format';

/** One line: a run's series of one metric. */
export interface ILine {
  label: string;
  /** (step, value) points; non-finite values are left out. */
  points: [number, number][];
}

/** Theme colours for the lines, in order (JupyterLab's categorical palette). */
export const LINE_COLORS = [
  'var(--jp-brand-color1)',
  'var(--jp-warn-color1)',
  'var(--jp-success-color1)',
  'var(--jp-error-color1)',
  'var(--jp-accent-color1)',
  'var(--jp-brand-color3)',
  'var(--jp-warn-color3)',
  'var(--jp-success-color3)'
];

const WIDTH = 420;
const HEIGHT = 220;
const MARGIN = { top: 12, right: 14, bottom: 28, left: 56 };

/** Round tick values covering [min, max] (about `count` of them). */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) {
    return [];
  }
  if (min === max) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const rough = (max - min) / Math.max(1, count - 1);
  const power = Math.pow(10, Math.floor(Math.log10(rough)));
  const step =
    [1, 2, 2.5, 5, 10].map(f => f * power).find(s => s >= rough) ?? rough;
  const ticks: number[] = [];
  for (
    let v = Math.floor(min / step) * step;
    v <= max + step * 1e-9;
    v += step
  ) {
    ticks.push(Number(v.toPrecision(12)));
  }
  if (ticks[ticks.length - 1] < max) {
    ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  }
  return ticks;
}

/** A chart of one metric, one line per run, with a title and a legend. */
export function lineChart(title: string, lines: ILine[]): HTMLElement {
  const finite = lines.map(line => ({
    ...line,
    points: line.points.filter(
      ([x, y]) => Number.isFinite(x) && Number.isFinite(y)
    )
  }));
  const all = finite.flatMap(line => line.points);
  const figure = h('figure', {
    className: 'nbtrack-chart',
    'data-metric': title
  });
  figure.appendChild(
    h('figcaption', { className: 'nbtrack-chart-title' }, title)
  );
  if (all.length === 0) {
    figure.appendChild(
      h('div', { className: 'nbtrack-empty' }, 'No finite values to draw.')
    );
    return figure;
  }
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => y);
  const xTicks = niceTicks(Math.min(...xs), Math.max(...xs), 6);
  const yTicks = niceTicks(Math.min(...ys), Math.max(...ys), 5);
  const [x0, x1] = [xTicks[0], xTicks[xTicks.length - 1]];
  const [y0, y1] = [yTicks[0], yTicks[yTicks.length - 1]];
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const sx = (x: number): number =>
    MARGIN.left + (x1 === x0 ? plotW / 2 : ((x - x0) / (x1 - x0)) * plotW);
  const sy = (y: number): number =>
    MARGIN.top +
    plotH -
    (y1 === y0 ? plotH / 2 : ((y - y0) / (y1 - y0)) * plotH);

  const chart = svg('svg', {
    class: 'nbtrack-chart-svg',
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: 'img',
    'aria-label': `${title} by step`
  });
  for (const y of yTicks) {
    chart.appendChild(
      svg('line', {
        class: 'nbtrack-chart-grid',
        x1: MARGIN.left,
        x2: WIDTH - MARGIN.right,
        y1: sy(y),
        y2: sy(y)
      })
    );
    const label = svg('text', {
      class: 'nbtrack-chart-tick',
      x: MARGIN.left - 6,
      y: sy(y) + 4,
      'text-anchor': 'end'
    });
    label.textContent = formatNumber(y);
    chart.appendChild(label);
  }
  for (const x of xTicks) {
    const label = svg('text', {
      class: 'nbtrack-chart-tick',
      x: sx(x),
      y: HEIGHT - MARGIN.bottom + 16,
      'text-anchor': 'middle'
    });
    label.textContent = formatNumber(x);
    chart.appendChild(label);
  }
  chart.appendChild(
    svg('line', {
      class: 'nbtrack-chart-axis',
      x1: MARGIN.left,
      x2: WIDTH - MARGIN.right,
      y1: MARGIN.top + plotH,
      y2: MARGIN.top + plotH
    })
  );
  const axisLabel = svg('text', {
    class: 'nbtrack-chart-tick',
    x: WIDTH - MARGIN.right,
    y: HEIGHT - 2,
    'text-anchor': 'end'
  });
  axisLabel.textContent = 'step';
  chart.appendChild(axisLabel);

  finite.forEach((line, index) => {
    const color = LINE_COLORS[index % LINE_COLORS.length];
    const sorted = [...line.points].sort((p, q) => p[0] - q[0]);
    if (sorted.length > 1) {
      chart.appendChild(
        svg('polyline', {
          class: 'nbtrack-chart-line',
          points: sorted.map(([x, y]) => `${sx(x)},${sy(y)}`).join(' '),
          stroke: color,
          'data-run': line.label
        })
      );
    }
    // Points show single-step series and make short series readable.
    if (sorted.length <= 50) {
      for (const [x, y] of sorted) {
        const dot = svg('circle', {
          class: 'nbtrack-chart-point',
          cx: sx(x),
          cy: sy(y),
          r: 2.5,
          fill: color
        });
        const tip = svg('title');
        tip.textContent = `${line.label}: step ${x} = ${formatNumber(y)}`;
        dot.appendChild(tip);
        chart.appendChild(dot);
      }
    }
  });
  figure.appendChild(chart);
  figure.appendChild(
    h(
      'div',
      { className: 'nbtrack-chart-legend' },
      finite.map((line, index) =>
        h(
          'span',
          { className: 'nbtrack-chart-key' },
          h('span', {
            className: 'nbtrack-chart-swatch',
            style: `background: ${LINE_COLORS[index % LINE_COLORS.length]}`
          }),
          line.label
        )
      )
    )
  );
  return figure;
}
