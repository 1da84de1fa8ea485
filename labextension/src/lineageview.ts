/**
 * The lineage view: a run's graph (ECharts, left to right) with the edges also as a
 * list (readable without the canvas), and the picked node's facts and actions:
 * open a run, see a data version's readers and writers and its drift, open a model.
 */
import { CommandRegistry } from '@lumino/commands';
import type { EChartsCoreOption, EChartsType } from 'echarts/core';

import { h } from './dom';
import { FetchView } from './fetchview';
import { ILineageGraph, ILineageNode, LineageModel } from './lineagemodel';
import { themeColor } from './charts';
import { ChartSet } from './viewcharts';
import { CommandIDs } from './tokens';

/** Tables drift can compare (nbtrack.profile reads these). */
const TABULAR = /\.(csv|tsv|parquet|pq|jsonl|ndjson)$/i;
const COLUMN_WIDTH = 240;
const ROW_HEIGHT = 70;

/** HTML-escape text a tooltip shows (paths and names come from users). */
export function escapeHTML(text: string): string {
  return text.replace(
    /[&<>"']/g,
    c =>
      ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[
        c
      ] ?? c
  );
}

/** The edges of a graph as `source → target` lines, in a stable order. */
export function edgeLines(graph: ILineageGraph): string[] {
  const label = new Map(graph.nodes.map(node => [node.id, node.label]));
  return graph.edges
    .map(
      edge =>
        `${label.get(edge.source)} → ${label.get(edge.target)}${edge.label ? ` (${edge.label})` : ''}`
    )
    .sort();
}

export namespace LineageView {
  export interface IOptions {
    model: LineageModel;
    commands: CommandRegistry;
  }
}

/** A run's lineage graph; owns its model. */
export class LineageView extends FetchView<LineageModel> {
  constructor(options: LineageView.IOptions) {
    super(options.model, 'Loading the lineage…');
    this.addClass('nbtrack-lineage');
    this._commands = options.commands;
  }

  dispose(): void {
    this._chartSet?.clear();
    super.dispose();
  }

  /** A new pick only redraws the facts under the graph, not the graph. */
  render(): void {
    if (this._info !== null && !this.model.isLoading && !this.model.error) {
      this._info.replaceChildren(...this._facts(this.model.selected));
      return;
    }
    this._chartSet?.clear(); // undefined during the base constructor's first render
    super.render();
  }

  protected renderContent(): (Node | string)[] {
    const graph = this.model.graph;
    const lonely = graph.nodes.length <= 1;
    const rows = Math.max(1, ...graph.nodes.map(node => node.row + 1));
    const host = h('div', {
      className: 'nbtrack-lineage-chart',
      style: `height: ${Math.max(260, rows * ROW_HEIGHT + 130)}px`,
      role: 'img',
      'aria-label': `Lineage graph of run ${this.model.runId.slice(0, 8)}`
    });
    this._info = h('div', { className: 'nbtrack-lineage-info' });
    this._info.replaceChildren(...this._facts(this.model.selected));
    if (!lonely) {
      this._chartSet = this._chartSet ?? new ChartSet();
      void this._chartSet
        .mount(host, this._option(graph))
        .then(chart => chart && this._listen(chart, graph));
    }
    const count = (kind: string): number =>
      graph.nodes.filter(node => node.kind === kind).length;
    return [
      h(
        'p',
        { className: 'nbtrack-lineage-summary' },
        `Run ${this.model.runId.slice(0, 8)}: ${count('run') - 1} related run(s), ` +
          `${count('data')} data version(s), ${count('model')} model version(s), ` +
          `up to ${this.model.depth} run(s) away. Data flows left to right; dashed: a kernel value.`
      ),
      lonely
        ? h(
            'p',
            { className: 'nbtrack-same' },
            'No other run wrote what this run read or read what it wrote, and it recorded no data.'
          )
        : host,
      this._info,
      h(
        'details',
        { className: 'nbtrack-lineage-edges' },
        h(
          'summary',
          {},
          `${graph.nodes.length} nodes and ${graph.edges.length} links as a list`
        ),
        // The canvas cannot take keyboard focus: every node is also a button here.
        h(
          'div',
          { className: 'nbtrack-lineage-nodes' },
          graph.nodes.map(node => {
            const pick = h(
              'button',
              {
                className: `jp-Button jp-mod-styled nbtrack-lineage-node nbtrack-node-${node.kind}`,
                'data-node': node.id
              },
              node.label
            );
            pick.addEventListener('click', () => this.model.select(node.id));
            pick.addEventListener('dblclick', () => this._open(node));
            return pick;
          })
        ),
        h(
          'ul',
          {},
          edgeLines(graph).map(line => h('li', {}, line))
        )
      )
    ];
  }

  private _option(graph: ILineageGraph): EChartsCoreOption {
    const colors: { [kind: string]: string } = {
      run: themeColor('--jp-brand-color1', '#1976d2'),
      data: themeColor('--jp-success-color1', '#388e3c'),
      model: themeColor('--jp-warn-color1', '#f57c00')
    };
    const symbols: { [kind: string]: string } = {
      run: 'roundRect',
      data: 'rect',
      model: 'diamond'
    };
    const text = themeColor('--jp-ui-font-color1', '#333');
    const index = new Map(graph.nodes.map((node, i) => [node.id, i]));
    return {
      tooltip: {
        formatter: (params: { dataType: string; dataIndex: number }) => {
          if (params.dataType !== 'node') {
            const edge = graph.edges[params.dataIndex];
            return escapeHTML(edge ? `${edge.kind} ${edge.label}` : '');
          }
          const node = graph.nodes[params.dataIndex];
          return `${escapeHTML(node.label)}<br/>${escapeHTML(node.detail)}`;
        }
      },
      series: [
        {
          type: 'graph',
          layout: 'none',
          roam: true,
          left: 100,
          right: 100,
          top: 80,
          bottom: 50,
          edgeSymbol: ['none', 'arrow'],
          edgeSymbolSize: 9,
          label: {
            show: true,
            position: 'bottom',
            color: text,
            fontSize: 11,
            width: COLUMN_WIDTH - 30,
            overflow: 'truncate'
          },
          lineStyle: {
            color: themeColor('--jp-border-color1', '#999'),
            width: 1.5,
            curveness: 0.08
          },
          emphasis: { focus: 'adjacency' },
          data: graph.nodes.map(node => ({
            name: node.label,
            x: node.layer * COLUMN_WIDTH,
            y: node.row * ROW_HEIGHT,
            symbol: symbols[node.kind],
            symbolSize: node.center ? 26 : 18,
            itemStyle: {
              color: colors[node.kind],
              borderColor: node.center ? text : undefined,
              borderWidth: node.center ? 2 : 0
            }
          })),
          links: graph.edges.map(edge => ({
            source: index.get(edge.source),
            target: index.get(edge.target),
            lineStyle: { type: edge.kind === 'value' ? 'dashed' : 'solid' },
            label: {
              show: edge.label !== '',
              formatter: edge.label,
              fontSize: 10
            }
          }))
        }
      ]
    };
  }

  private _listen(chart: EChartsType, graph: ILineageGraph): void {
    chart.on('click', params => {
      if (params.dataType === 'node') {
        this.model.select(graph.nodes[params.dataIndex]?.id ?? null);
      }
    });
    chart.on('dblclick', params => {
      const node = graph.nodes[params.dataIndex];
      if (params.dataType === 'node' && node) {
        this._open(node);
      }
    });
  }

  private _open(node: ILineageNode): void {
    const path = this.model.path;
    if (node.kind === 'run' && node.runId) {
      void this._commands.execute(CommandIDs.openRun, {
        runId: node.runId,
        path
      });
    } else if (node.kind === 'model' && node.model) {
      void this._commands.execute(CommandIDs.openModels, {
        name: node.model.name,
        path
      });
    } else if (node.kind === 'data' && node.paths?.length) {
      void this._commands.execute(CommandIDs.openDrift, {
        file: node.paths[0],
        path
      });
    }
  }

  private _facts(node: ILineageNode | null): (Node | string)[] {
    if (node === null) {
      return [
        h(
          'p',
          { className: 'nbtrack-hint' },
          'Click a node to see it; double-click a run to open it.'
        )
      ];
    }
    const button = (label: string): HTMLButtonElement => {
      const element = h(
        'button',
        { className: 'jp-Button jp-mod-styled jp-mod-accept' },
        label
      );
      element.addEventListener('click', () => this._open(node));
      return element;
    };
    const lines = [node.detail, ...this.model.describe(node)];
    if (node.more) {
      lines.push(`${node.more} more run(s) with this content are not shown`);
    }
    const action =
      node.kind === 'run'
        ? button('Open run')
        : node.kind === 'model'
          ? button('Show in Models')
          : node.paths?.some(p => TABULAR.test(p))
            ? button('Drift of this file')
            : '';
    return [
      h('h4', {}, node.label),
      h(
        'ul',
        {},
        lines.map(line => h('li', {}, line))
      ),
      action
    ];
  }

  private _commands: CommandRegistry;
  private _chartSet: ChartSet | undefined;
  private _info: HTMLElement | null = null;
}
