/**
 * How values read in the panel: numbers, durations, times, paths.
 */
import { PathExt } from '@jupyterlab/coreutils';

import { IRunSummary, JSONFloat, ParamValue } from './api';

/** The JSON spellings of the non-finite floats, as the shared format prints them. */
const NON_FINITE: { [json: string]: string } = {
  NaN: 'NaN',
  Infinity: 'inf',
  '-Infinity': '-inf'
};

/** A parameter or metric value, short. */
export function formatValue(value: ParamValue | JSONFloat | undefined): string {
  if (value === undefined || value === null) {
    return '';
  }
  if (typeof value === 'number') {
    return formatNumber(value);
  }
  if (typeof value === 'string') {
    return NON_FINITE[value] ?? value;
  }
  return JSON.stringify(value);
}

/**
 * A number in the format the CLI prints too (tests/fixtures/number_format.json):
 * integers as they are; 1e-4 <= |x| < 1e6 fixed with at most 6 significant digits;
 * anything else scientific (`1.5e-7`, `1e15`); `NaN`, `inf`, `-inf`.
 */
export function formatNumber(value: number): string {
  if (Number.isNaN(value)) {
    return 'NaN';
  }
  if (!Number.isFinite(value)) {
    return value > 0 ? 'inf' : '-inf';
  }
  if (Number.isInteger(value) && Math.abs(value) < 1e15) {
    return String(value === 0 ? 0 : value);
  }
  // Round first, then choose the notation: 999999.5 rounds to 1e6 and reads so.
  const rounded = Number(value.toPrecision(6));
  const magnitude = Math.abs(rounded);
  if (magnitude >= 1e-4 && magnitude < 1e6) {
    return String(rounded);
  }
  return rounded.toExponential().replace('e+', 'e');
}

/** A signed difference: `+0.12`, `-3`. */
export function formatDelta(value: JSONFloat | undefined): string {
  if (value === undefined) {
    return '';
  }
  if (typeof value !== 'number') {
    return value;
  }
  return (value > 0 ? '+' : '') + formatNumber(value);
}

/** Seconds as `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`. */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) {
    return '';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min ${String(Math.round(seconds % 60)).padStart(2, '0')} s`;
  }
  const hours = Math.floor(minutes / 60);
  return `${hours} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/** A start time as local date and time, short. */
export function formatTime(iso: string | null, now: Date = new Date()): string {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  const sameDay = date.toDateString() === now.toDateString();
  const time = date.toLocaleTimeString([], {
    hourCycle: 'h23',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit'
  });
  return sameDay
    ? time
    : `${date.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${time}`;
}

/** `notebook.ipynb · cell 3` (or the cell id when no execution count). */
export function formatLocation(run: IRunSummary): string {
  const notebook = run.notebook_path ? PathExt.basename(run.notebook_path) : '';
  const cell =
    run.execution_count !== null
      ? `[${run.execution_count}]`
      : run.cell_id
        ? run.cell_id.slice(0, 8)
        : '';
  return [notebook, cell].filter(Boolean).join(' ');
}

/** A run's name for people: its name, else its short id. */
export function runLabel(run: IRunSummary): string {
  return run.name ? `${run.name} ${shortId(run.run_id)}` : shortId(run.run_id);
}

export function shortId(runId: string): string {
  return runId.slice(0, 8);
}

/**
 * The server-relative path of a run's notebook, or null when it lies outside the
 * server root (then it cannot be opened in this JupyterLab).
 */
export function notebookServerPath(
  projectPath: string | null,
  notebookPath: string | null
): string | null {
  if (!notebookPath || projectPath === null) {
    return null;
  }
  if (notebookPath.startsWith('/')) {
    return null;
  }
  return projectPath ? PathExt.join(projectPath, notebookPath) : notebookPath;
}
