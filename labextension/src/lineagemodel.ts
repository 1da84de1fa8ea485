/**
 * The lineage of a run as a small directed graph: runs, the data versions they read
 * and wrote (one node per content, whatever path it was seen under), kernel values
 * passed from cell to cell, and model versions; laid out left to right.
 */
import { ILineage, ILineageRun, fetchLineage } from './api';
import { FetchModel } from './fetchmodel';
import { shortId } from './format';

export type LineageNodeKind = 'run' | 'data' | 'model';

export interface ILineageNode {
  /** `run:<id>`, `data:<hash>` (or `data:<run>:<role>:<path>` without a hash), `model:<name>/<version>`. */
  id: string;
  kind: LineageNodeKind;
  label: string;
  /** One line more for the tooltip (notebook, hash, flavor). */
  detail: string;
  /** Column from the left: sources at 0, each edge one step right. */
  layer: number;
  /** Row within the column. */
  row: number;
  /** The run the view is about. */
  center: boolean;
  /** Run id (run nodes), hash (data and model nodes), path(s) of a data node. */
  runId?: string;
  hash?: string | null;
  paths?: string[];
  model?: { name: string; version: number };
  /** Runs left out past the server's fan-out limit (data nodes). */
  more?: number;
}

export type LineageEdgeKind =
  'reads' | 'writes' | 'value' | 'registers' | 'loads';

export interface ILineageEdge {
  source: string;
  target: string;
  kind: LineageEdgeKind;
  /** Variable names, for value edges. */
  label: string;
}

export interface ILineageGraph {
  nodes: ILineageNode[];
  edges: ILineageEdge[];
}

const basename = (path: string): string => path.split('/').pop() ?? path;

function runNodeLabel(run: ILineageRun): string {
  const notebook = run.notebook_path ? basename(run.notebook_path) : '';
  const name = run.name
    ? `${run.name} ${shortId(run.run_id)}`
    : shortId(run.run_id);
  return notebook ? `${notebook.replace(/\.ipynb$/, '')} · ${name}` : name;
}

/**
 * Build the graph of a lineage payload: nodes deduplicated (a content read and
 * written by several runs is one node; the same edge twice is one edge), then laid
 * out in layers by longest path from the sources (cycles broken where they close).
 */
export function buildLineageGraph(lineage: ILineage): ILineageGraph {
  const nodes = new Map<string, ILineageNode>();
  const edges = new Map<string, ILineageEdge>();
  const addEdge = (
    source: string,
    target: string,
    kind: LineageEdgeKind,
    label = ''
  ): void => {
    if (source === target || !nodes.has(source) || !nodes.has(target)) {
      return;
    }
    const key = `${source}→${target}`;
    const existing = edges.get(key);
    if (existing === undefined) {
      edges.set(key, { source, target, kind, label });
    } else if (label && !existing.label.split(', ').includes(label)) {
      existing.label = existing.label ? `${existing.label}, ${label}` : label;
    }
  };
  const blank = {
    layer: 0,
    row: 0,
    center: false
  };

  for (const run of lineage.runs) {
    nodes.set(`run:${run.run_id}`, {
      ...blank,
      id: `run:${run.run_id}`,
      kind: 'run',
      label: runNodeLabel(run),
      detail: `${run.notebook_path ?? 'no notebook'} · ${run.status} · ${shortId(run.run_id)}`,
      center: run.run_id === lineage.run_id,
      runId: run.run_id
    });
  }
  for (const row of lineage.data) {
    const id = row.hash
      ? `data:${row.hash}`
      : `data:${row.run_id}:${row.role}:${row.path}`;
    const node = nodes.get(id);
    if (node === undefined) {
      nodes.set(id, {
        ...blank,
        id,
        kind: 'data',
        label: row.path,
        detail: row.hash
          ? `${row.hash.split(':').pop()?.slice(0, 12)}${row.size !== null ? ` · ${row.size.toLocaleString()} B` : ''}`
          : 'not hashed',
        hash: row.hash,
        paths: [row.path],
        more: row.hash ? lineage.more[row.hash] : undefined
      });
    } else if (!node.paths?.includes(row.path)) {
      node.paths?.push(row.path);
      node.label = `${node.paths?.[0]} (+${(node.paths?.length ?? 1) - 1})`;
    }
    const run = `run:${row.run_id}`;
    if (row.role === 'output') {
      addEdge(run, id, 'writes');
    } else {
      addEdge(id, run, 'reads');
    }
  }
  for (const value of lineage.values) {
    addEdge(`run:${value.source}`, `run:${value.target}`, 'value', value.name);
  }
  const inputsByHash = new Map<string, string[]>();
  for (const row of lineage.data) {
    if (row.role === 'input' && row.hash) {
      inputsByHash.set(row.hash, [
        ...(inputsByHash.get(row.hash) ?? []),
        row.run_id
      ]);
    }
  }
  for (const model of lineage.models) {
    const id = `model:${model.name}/${model.version}`;
    const aliases = model.aliases.map(alias => ` @${alias}`).join('');
    nodes.set(id, {
      ...blank,
      id,
      kind: 'model',
      label: `${model.name} v${model.version}${aliases}`,
      detail: `${model.flavor}${model.archived ? ' · archived' : ''}`,
      hash: model.hash,
      model: { name: model.name, version: model.version }
    });
    if (model.run_id) {
      addEdge(`run:${model.run_id}`, id, 'registers');
    }
    for (const reader of inputsByHash.get(model.hash) ?? []) {
      if (reader !== model.run_id) {
        addEdge(id, `run:${reader}`, 'loads');
      }
    }
  }
  const graph = { nodes: [...nodes.values()], edges: [...edges.values()] };
  layout(graph);
  return graph;
}

/** Layers by longest path from the sources; rows in order of first appearance. */
function layout(graph: ILineageGraph): void {
  const incoming = new Map<string, string[]>();
  for (const edge of graph.edges) {
    incoming.set(edge.target, [
      ...(incoming.get(edge.target) ?? []),
      edge.source
    ]);
  }
  const layers = new Map<string, number>();
  const visiting = new Set<string>();
  const layerOf = (id: string): number => {
    const known = layers.get(id);
    if (known !== undefined) {
      return known;
    }
    if (visiting.has(id)) {
      return 0; // a cycle (a run rewrote what it read): break it here
    }
    visiting.add(id);
    const sources = incoming.get(id) ?? [];
    const layer = sources.length
      ? Math.max(...sources.map(source => layerOf(source) + 1))
      : 0;
    visiting.delete(id);
    layers.set(id, layer);
    return layer;
  };
  const rows = new Map<number, number>();
  for (const node of graph.nodes) {
    node.layer = layerOf(node.id);
  }
  // Within a column: runs, then data, then models; each in payload order.
  const order: LineageNodeKind[] = ['run', 'data', 'model'];
  const sorted = [...graph.nodes].sort(
    (a, b) => order.indexOf(a.kind) - order.indexOf(b.kind)
  );
  for (const node of sorted) {
    node.row = rows.get(node.layer) ?? 0;
    rows.set(node.layer, node.row + 1);
  }
}

export namespace LineageModel {
  export interface IOptions {
    /** Server-relative path of the notebook whose store holds the run. */
    path: string;
    runId: string;
    depth?: number;
  }
}

/** The lineage of one run, fetched once, as a graph. */
export class LineageModel extends FetchModel<ILineage> {
  constructor(options: LineageModel.IOptions) {
    super(() => fetchLineage(options.path, options.runId, options.depth ?? 1));
    this.path = options.path;
    this.runId = options.runId;
    this.depth = options.depth ?? 1;
  }

  readonly path: string;
  readonly runId: string;
  /** How many runs away the lineage follows data. */
  readonly depth: number;

  /** The graph (empty until loaded). */
  get graph(): ILineageGraph {
    if (this._graph === null && this.data !== null) {
      this._graph = buildLineageGraph(this.data);
    }
    return this._graph ?? { nodes: [], edges: [] };
  }

  /** The node the user picked (shown under the graph), or null. */
  get selected(): ILineageNode | null {
    return this.graph.nodes.find(node => node.id === this._selected) ?? null;
  }

  select(id: string | null): void {
    if (id !== this._selected) {
      this._selected = id;
      this._changed.emit();
    }
  }

  /** Which runs read and wrote a data node's content, as `path ← run` lines. */
  describe(node: ILineageNode): string[] {
    const lineage = this.data;
    if (lineage === null || node.kind !== 'data') {
      return [];
    }
    const runs = new Map(lineage.runs.map(run => [run.run_id, run]));
    const lines = lineage.data
      .filter(row =>
        node.hash ? row.hash === node.hash : node.id.endsWith(`:${row.path}`)
      )
      .map(row => {
        const run = runs.get(row.run_id);
        const who = run ? runNodeLabel(run) : shortId(row.run_id);
        return `${row.role === 'output' ? 'written' : 'read'} as ${row.path} by ${who}`;
      });
    return [...new Set(lines)];
  }

  private _graph: ILineageGraph | null = null;
  private _selected: string | null = null;
}
