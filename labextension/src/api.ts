/**
 * The only module that talks to the server: the nbtrack REST API
 * (`<base_url>/nbtrack/api/`, documented in docs/openapi.yaml), mirrored as
 * TypeScript interfaces.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** A JSON number the server could not send as a number ("NaN", "Infinity", "-Infinity"). */
export type JSONFloat = number | 'NaN' | 'Infinity' | '-Infinity';

/** Any JSON value a parameter may hold. */
export type ParamValue =
  | string
  | number
  | boolean
  | null
  | ParamValue[]
  | { [key: string]: ParamValue };

export type RunStatus = 'running' | 'finished' | 'failed' | 'crashed';
export type RunKind = 'cell' | 'notebook';

/** A run as the list route serves it (the light fields only). */
export interface IRunSummary {
  run_id: string;
  kind: RunKind;
  name: string | null;
  status: RunStatus;
  error: string | null;
  started_at: string | null;
  ended_at: string | null;
  duration: number | null;
  parent_id: string | null;
  rerun_of: string | null;
  /** The verdict of the re-run this run is (`reproduced`, `differs` ...); older servers omit it. */
  rerun_verdict?: string | null;
  notebook_path: string | null;
  cell_id: string | null;
  execution_count: number | null;
  params: { [key: string]: ParamValue };
  metrics: { [key: string]: JSONFloat };
  tags: { [key: string]: string };
}

/** One version of a file, folder or DataFrame a run read or wrote. */
export interface IDataVersion {
  path: string;
  role: 'input' | 'output';
  hash: string | null;
  size: number | null;
  kind: string;
  in_project: boolean;
  cached: boolean;
  mtime: number | null;
}

export interface IEnvironment {
  env_id: string;
  python: string;
  platform: string;
  packages: { [name: string]: string };
}

/** Everything about one run (`GET runs/{id}`). */
export interface IRun extends IRunSummary {
  source: string | null;
  notebook_hash: string | null;
  code_matches_notebook: boolean | null;
  git_commit: string | null;
  git_dirty: boolean | null;
  git_diff: string | null;
  param_sources: { [key: string]: string };
  data: IDataVersion[];
  environment: IEnvironment | null;
  /** The cell runs of a notebook run. */
  children?: IRunSummary[];
}

/** `GET runs`: one page of runs. */
export interface IRunPage {
  runs: IRunSummary[];
  total: number;
  param_keys: string[];
  metric_keys: string[];
  limit: number;
  offset: number;
}

/** What `GET runs` filters and sorts by. */
export interface IRunQuery {
  /** SQL condition over params and metrics, e.g. `lr > 0.01 AND acc > 0.9`. */
  where?: string;
  /** Substring of the name, notebook, id or params. */
  text?: string;
  /** `started_at`, `name`, `status`, `duration`, `params.X`, `metrics.Y` ... */
  sort?: string;
  descending?: boolean;
  limit?: number;
  offset?: number;
  kind?: RunKind | 'all';
  status?: RunStatus;
  /** Only the cell runs of this notebook run. */
  parent_id?: string;
  /** Only the runs of this sweep (its notebook runs and their cell runs), as `ls --parent SWEEP`. */
  sweep?: string;
  /** Only the runs of the notebook named by `path`. */
  notebook?: boolean;
}

export interface IMetricPoint {
  step: number | null;
  value: JSONFloat;
  ts: number;
}

/** `GET runs/{id}/metrics`. */
export interface IMetricSeries {
  run_id: string;
  series: { [key: string]: IMetricPoint[] };
}

export type ChangeKind = 'same' | 'changed' | 'added' | 'removed';

/** One named value (param, metric, package) in run A and run B. */
export interface IChange {
  key: string;
  kind: ChangeKind;
  a: ParamValue;
  b: ParamValue;
  delta?: JSONFloat;
  relative?: JSONFloat;
}

export interface IDataChange {
  path: string;
  role: 'input' | 'output';
  kind: ChangeKind;
  a: IDataVersion | null;
  b: IDataVersion | null;
  size_delta: number | null;
  /** The inside-the-data comparison (rows, columns) where one exists. */
  detail: { [key: string]: unknown } | null;
}

/** What differs between two runs. */
export interface IRunDiff {
  a: string;
  b: string;
  differs: boolean;
  include_same: boolean;
  params: IChange[];
  metrics: IChange[];
  data: IDataChange[];
  /** A unified diff of the cell code, empty when the same. */
  code: string;
  environment: IChange[];
  outcome: IChange[];
  stats: { [part: string]: { [kind: string]: number } };
}

/** `GET diff`. */
export interface IDiffReply {
  a: string;
  b: string;
  diff: IRunDiff;
}

/** `GET compare`: several runs, each diffed against the first. */
export interface ICompareReply {
  baseline: IRun;
  runs: IRun[];
  diffs: IRunDiff[];
}

/** `GET status`. */
export interface IStoreStatus {
  project_root: string;
  /** The project folder relative to the server root ("" for the root), null if outside. */
  project_path: string | null;
  store_path: string;
  exists: boolean;
  change_token: string;
  rerun_available: boolean;
}

export type JobState = 'queued' | 'running' | 'finished' | 'failed';

/** What moved between a run and its re-run (nbtrack.pipelines.verdict). */
export interface IVerdict {
  reproduced: boolean;
  metrics: {
    cell: string;
    key: string;
    before: JSONFloat | null;
    after: JSONFloat | null;
  }[];
  outputs: { cell: string; path: string; change: string }[];
  inputs: { cell: string; path: string; change: string }[];
  outcomes: {
    cell: string;
    before: string;
    after: string | null;
    error?: string | null;
  }[];
}

/** The outcome of a finished re-run. */
export interface IRerunResult {
  original: string;
  /** The re-run's notebook run. */
  run_id: string;
  /** The run the table lists for it (the re-run's cell run when there is one). */
  shown_run_id?: string | null;
  status: string;
  error: string | null;
  reproduced: boolean;
  warnings: string[];
  verdict?: IVerdict;
}

/** A re-run job (`POST runs/{id}/rerun`, `GET jobs/{id}`). */
export interface IJob {
  job_id: string;
  run_id: string;
  state: JobState;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  result: IRerunResult | null;
  error: { type: string; message: string } | null;
  created?: boolean;
}

/** The error body of every failed request. */
export interface IErrorReply {
  error: { type: string; message: string };
}

type QueryValue = string | number | boolean | undefined | null;

/**
 * Call the nbtrack API. Failures become `ServerConnection.NetworkError` (no answer)
 * or `ServerConnection.ResponseError` carrying the server's own message.
 */
export async function requestAPI<T>(
  endPoint: string,
  query: { [key: string]: QueryValue } = {},
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const search = Object.entries(query)
    .filter(
      ([, value]) => value !== undefined && value !== null && value !== ''
    )
    .map(
      ([key, value]) =>
        `${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`
    )
    .join('&');
  const url =
    URLExt.join(settings.baseUrl, 'nbtrack', 'api', endPoint) +
    (search ? `?${search}` : '');
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: unknown = null;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const reply = data as Partial<IErrorReply> | null;
    const message =
      reply && typeof reply === 'object' && reply.error
        ? reply.error.message
        : `${response.status} ${response.statusText}`;
    throw new ServerConnection.ResponseError(response, message);
  }
  return data as T;
}

/** The store of the notebook at `path` (server-relative): where it is and its change token. */
export function fetchStatus(path: string): Promise<IStoreStatus> {
  return requestAPI<IStoreStatus>('status', { path });
}

/** One page of runs of the store of `path`. */
export function fetchRuns(path: string, query: IRunQuery): Promise<IRunPage> {
  return requestAPI<IRunPage>('runs', { path, ...query });
}

/** Everything about one run. */
export function fetchRun(path: string, ref: string): Promise<IRun> {
  return requestAPI<IRun>(`runs/${encodeURIComponent(ref)}`, { path });
}

/** The metric step series of one run. */
export function fetchMetrics(
  path: string,
  ref: string
): Promise<IMetricSeries> {
  return requestAPI<IMetricSeries>(`runs/${encodeURIComponent(ref)}/metrics`, {
    path
  });
}

/** What differs between two runs (`all`: everything, the same values too). */
export function fetchDiff(
  path: string,
  a: string,
  b: string,
  all = false
): Promise<IDiffReply> {
  return requestAPI<IDiffReply>('diff', { path, a, b, all });
}

/** Several runs, each diffed against the first. */
export function fetchCompare(
  path: string,
  ids: string[],
  all = false
): Promise<ICompareReply> {
  return requestAPI<ICompareReply>('compare', {
    path,
    ids: ids.join(','),
    all
  });
}

/** Start re-running a run; the job comes back at once. */
export function startRerun(path: string, ref: string): Promise<IJob> {
  return requestAPI<IJob>(
    `runs/${encodeURIComponent(ref)}/rerun`,
    { path },
    { method: 'POST', body: '{}' }
  );
}

/** The state of a re-run job. */
export function fetchJob(jobId: string): Promise<IJob> {
  return requestAPI<IJob>(`jobs/${encodeURIComponent(jobId)}`);
}

/** A JSON float as a number (NaN and infinities included). */
export function toNumber(value: JSONFloat | ParamValue | undefined): number {
  if (typeof value === 'number') {
    return value;
  }
  if (value === 'NaN') {
    return NaN;
  }
  if (value === 'Infinity') {
    return Infinity;
  }
  if (value === '-Infinity') {
    return -Infinity;
  }
  return NaN;
}

// ---------------------------------------------------------------- run views

/** A run as a lineage names it. */
export interface ILineageRun {
  run_id: string;
  kind: RunKind;
  name: string | null;
  status: RunStatus;
  started_at: string | null;
  notebook_path: string | null;
  cell_id: string | null;
  parent_id: string | null;
}

/** One data-version row of a lineage: a run read (`input`) or wrote (`output`) a content. */
export interface ILineageData {
  run_id: string;
  path: string;
  role: 'input' | 'output';
  hash: string | null;
  size: number | null;
  kind: string | null;
  cached: boolean | null;
}

/** A kernel value one run's cell read from another run's cell. */
export interface ILineageValue {
  source: string;
  target: string;
  name: string;
}

/** A model version made by, or whose bytes were read by, a run of the lineage. */
export interface ILineageModel {
  name: string;
  version: number;
  hash: string;
  run_id: string | null;
  flavor: string;
  archived: boolean;
  aliases: string[];
}

/** `GET runs/{id}/lineage`. */
export interface ILineage {
  run_id: string;
  depth: number;
  /** The run itself first. */
  runs: ILineageRun[];
  data: ILineageData[];
  values: ILineageValue[];
  models: ILineageModel[];
  /** Content hash → runs left out past the fan-out limit. */
  more: { [hash: string]: number };
}

/** An image a run wrote (`GET runs/{id}/images`). */
export interface IRunImage {
  path: string;
  hash: string;
  size: number | null;
  media_type: string;
  /** False when its bytes were not kept (`--no-cache`, gc): no preview. */
  cached: boolean;
}

export interface IRunImages {
  run_id: string;
  images: IRunImage[];
  /** How many images the run wrote (more than listed past the server's limit). */
  total: number;
}

/** A registered model (`GET models`). */
export interface IRegisteredModel {
  name: string;
  created_at: string | null;
  updated_at: string | null;
  description: string | null;
  tags: { [key: string]: string };
  versions: number;
  latest_version: number | null;
  latest_flavor: string | null;
  /** Alias → version. */
  aliases: { [alias: string]: number };
}

/** One column of a model signature (MLflow's column or tensor spec). */
export interface ISignatureColumn {
  name?: string;
  type: string;
  'tensor-spec'?: { dtype: string; shape: number[] };
}

export interface IModelVersion {
  name: string;
  version: number;
  version_id: string;
  uri: string;
  flavor: string;
  hash: string;
  size: number | null;
  file_name: string;
  created_at: string | null;
  run_id: string | null;
  source_path: string | null;
  signature: {
    inputs?: ISignatureColumn[];
    outputs?: ISignatureColumn[];
  } | null;
  env: { [key: string]: unknown };
  description: string | null;
  tags: { [key: string]: string };
  archived: boolean;
  aliases: string[];
}

/** One move of an alias (`to_version` null: removed). */
export interface IAliasMove {
  name: string;
  alias: string;
  seq: number;
  at: string | null;
  from_version: number | null;
  to_version: number | null;
  host: string | null;
  user: string | null;
  move_id: string;
}

/** `GET models/{name}`: versions newest first. */
export interface IModelDetail {
  model: IRegisteredModel;
  versions: IModelVersion[];
  alias_history: IAliasMove[];
}

/** One column of one version against the reference (nbtrack.drift). */
export interface IColumnDrift {
  name: string;
  type: string | null;
  type_ref: string | null;
  psi: JSONFloat | null;
  ks: JSONFloat | null;
  ks_p: JSONFloat | null;
  js: JSONFloat | null;
  null: JSONFloat;
  null_ref: JSONFloat;
  flags: string[];
  note: string | null;
  drifted: boolean;
  [other: string]: unknown;
}

export interface ITableDrift {
  rows_ref: number;
  rows: number;
  columns_added: string[];
  columns_removed: string[];
  columns_retyped: { name: string; ref: string; type: string }[];
  columns: IColumnDrift[];
  drifted: string[];
  schema_changed: boolean;
}

export interface IVersionDrift {
  path: string;
  run_id: string | null;
  started: string | null;
  hash: string | null;
  runs: number;
  reference: boolean;
  drift: ITableDrift | null;
  note: string | null;
}

/** `GET drift?file=`: every version of a file against the reference, oldest first. */
export interface IDriftReport {
  title: string;
  thresholds: { [name: string]: number };
  versions: IVersionDrift[];
  drifted: boolean;
}

/** The lineage of a run, `depth` runs away on each side. */
export function fetchLineage(
  path: string,
  ref: string,
  depth = 1
): Promise<ILineage> {
  return requestAPI<ILineage>(`runs/${encodeURIComponent(ref)}/lineage`, {
    path,
    depth
  });
}

/** The images a run wrote. */
export function fetchImages(path: string, ref: string): Promise<IRunImages> {
  return requestAPI<IRunImages>(`runs/${encodeURIComponent(ref)}/images`, {
    path
  });
}

/** The bytes of one image a run wrote (through the same authenticated request). */
export async function fetchImageBlob(
  path: string,
  ref: string,
  hash: string,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<Blob> {
  const url = URLExt.join(
    settings.baseUrl,
    'nbtrack',
    'api',
    'runs',
    encodeURIComponent(ref),
    'images',
    encodeURIComponent(hash)
  );
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(
      `${url}?path=${encodeURIComponent(path)}`,
      {},
      settings
    );
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      message = ((await response.json()) as IErrorReply).error.message;
    } catch {
      // not our JSON error: keep the status line
    }
    throw new ServerConnection.ResponseError(response, message);
  }
  return response.blob();
}

/** Every registered model of the store of `path`. */
export async function fetchModels(path: string): Promise<IRegisteredModel[]> {
  return (await requestAPI<{ models: IRegisteredModel[] }>('models', { path }))
    .models;
}

/** One model with its versions and alias history. */
export function fetchModel(path: string, name: string): Promise<IModelDetail> {
  return requestAPI<IModelDetail>(`models/${encodeURIComponent(name)}`, {
    path
  });
}

/**
 * Move `alias` of `name` to `version` (null: remove it), only if it is still on
 * `expected` (null: not set); the server answers 409 when it moved meanwhile.
 */
export function moveAlias(
  path: string,
  name: string,
  alias: string,
  version: number | null,
  expected: number | null
): Promise<IAliasMove> {
  return requestAPI<IAliasMove>(
    `models/${encodeURIComponent(name)}/aliases/${encodeURIComponent(alias)}`,
    { path },
    version === null
      ? { method: 'DELETE', body: JSON.stringify({ expected }) }
      : { method: 'PUT', body: JSON.stringify({ version, expected }) }
  );
}

/** Drift of a data file across its recorded versions (`ref`: run or hash prefix). */
export function fetchDrift(
  path: string,
  file: string,
  ref?: string
): Promise<IDriftReport> {
  return requestAPI<IDriftReport>('drift', { path, file, ref });
}
