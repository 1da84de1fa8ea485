/**
 * The model of the diff view: what differs between two runs (or several, each
 * against the first), fetched once with the same values too, and which of it
 * shows: only what differs, or everything.
 */
import {
  IChange,
  IDataChange,
  IRun,
  IRunDiff,
  fetchCompare,
  fetchDiff
} from './api';
import { FetchModel } from './fetchmodel';
import { runLabel, shortId } from './format';

export namespace RunDiffModel {
  export interface IOptions {
    /** Server-relative path of the notebook whose store holds the runs. */
    path: string;
    /** Run ids; the first is the baseline. */
    runIds: string[];
    /** Labels of the runs, by id (name + short id). */
    labels?: { [runId: string]: string };
  }
}

/** The parts of a diff that are named values (one row per key). */
export type DiffSection = 'outcome' | 'params' | 'metrics' | 'environment';

/** A change seen in the run `runId` against the baseline. */
export interface IRunChange<T> {
  runId: string;
  change: T;
}

interface IDiffs {
  diffs: IRunDiff[];
  /** The runs compared, when the server sent them (three runs or more). */
  runs: IRun[];
}

/** What differs between runs, and what of it the view shows. */
export class RunDiffModel extends FetchModel<IDiffs> {
  constructor(options: RunDiffModel.IOptions) {
    const { path, runIds } = options;
    // Everything is fetched, the same values too: the view filters.
    super(async () => {
      if (runIds.length === 2) {
        const reply = await fetchDiff(path, runIds[0], runIds[1], true);
        return { diffs: [reply.diff], runs: [] };
      }
      const reply = await fetchCompare(path, runIds, true);
      return { diffs: reply.diffs, runs: reply.runs };
    });
    this._runIds = [...runIds];
    this._labels = { ...options.labels };
  }

  /** The runs compared, baseline first. */
  get runIds(): string[] {
    return [...this._runIds];
  }

  /** Each run against the baseline (empty until loaded). */
  get diffs(): IRunDiff[] {
    return this.data?.diffs ?? [];
  }

  /** Whether any run differs from the baseline. */
  get differs(): boolean {
    return this.diffs.some(diff => diff.differs);
  }

  /** Every value shows (true), or only what differs (false, the default). */
  get showAll(): boolean {
    return this._showAll;
  }

  setShowAll(showAll: boolean): void {
    this._showAll = showAll;
    this._changed.emit();
  }

  /** How a run is named: the label given, else its name from the server, else its short id. */
  label(runId: string): string {
    const run = this.data?.runs.find(r => r.run_id === runId);
    return this._labels[runId] ?? (run ? runLabel(run) : shortId(runId));
  }

  /**
   * The keys of a section that show, in first-seen order, each with its change
   * in every run against the baseline (undefined where a run does not have it).
   */
  changes(section: DiffSection): Map<string, (IChange | undefined)[]> {
    const diffs = this.diffs;
    const rows = new Map<string, (IChange | undefined)[]>();
    diffs.forEach((diff, index) => {
      for (const change of diff[section]) {
        const row =
          rows.get(change.key) ?? new Array<IChange | undefined>(diffs.length);
        row[index] = change;
        rows.set(change.key, row);
      }
    });
    for (const [key, changes] of rows) {
      if (
        !changes.some(
          change => change !== undefined && this._visible(change.kind)
        )
      ) {
        rows.delete(key);
      }
    }
    return rows;
  }

  /** The data changes that show; a file the same in every run shows once. */
  dataChanges(): IRunChange<IDataChange>[] {
    const shown: IRunChange<IDataChange>[] = [];
    const seen = new Set<string>();
    this.diffs.forEach((diff, index) => {
      for (const change of diff.data) {
        if (!this._visible(change.kind)) {
          continue;
        }
        const key = `${change.role}:${change.path}`;
        if (index > 0 && seen.has(key) && change.kind === 'same') {
          continue;
        }
        seen.add(key);
        shown.push({ runId: this._runIds[index + 1], change });
      }
    });
    return shown;
  }

  /** The unified diffs of the cell code, for the runs whose code differs. */
  codeChanges(): IRunChange<string>[] {
    return this.diffs
      .map((diff, index) => ({
        runId: this._runIds[index + 1],
        change: diff.code
      }))
      .filter(({ change }) => change);
  }

  private _visible(kind: string): boolean {
    return this._showAll || kind !== 'same';
  }

  private _runIds: string[];
  private _labels: { [runId: string]: string };
  private _showAll = false;
}
