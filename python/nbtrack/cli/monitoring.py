"""``nbtrack check | drift``: metric gates for CI, and data drift across versions."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..exceptions import NbtrackError
from .output import emit_json, emit_table
from .parser import open_client

EXIT_GATE_FAILED = 1
EXIT_GATE_ERROR = 2


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 when the gate holds, 1 when it does not, 2 when it cannot be applied."""
    try:
        result = _gate(open_client(args), args)
    except NbtrackError as exc:
        # A gate that cannot be applied is not a failed gate: CI must tell them apart.
        print(f"nbtrack check: error: {exc}", file=sys.stderr)
        return EXIT_GATE_ERROR
    if args.json:
        emit_json(result.to_dict())
    else:
        print(result.line())
    return 0 if result.passed else EXIT_GATE_FAILED


def _gate(client: Any, args: argparse.Namespace) -> Any:
    if args.model is not None:
        from ..registry.core import Registry

        return Registry(client).check(args.expression, args.model, against=args.against)
    return client.check(args.expression, args.run, against=args.against, notebook=args.last)


def cmd_drift(args: argparse.Namespace) -> int:
    from .. import driftreport as drift

    report = _drift_report(open_client(args), args)
    if args.json:
        emit_json(report.to_dict())
        return 0
    for line in report.header():
        print(line)
    rows = report.rows(all_columns=args.all)
    if rows:
        emit_table(drift.ROW_COLUMNS, rows, max_width=48)
    for line in report.footer():
        print(line)
    return 0


def _drift_report(client: Any, args: argparse.Namespace) -> Any:
    from .. import driftreport as drift
    from ..driftflags import Thresholds
    from ..exceptions import UsageError

    thresholds = Thresholds(
        psi=args.psi, ks_p=args.ks_p, js=args.js, chi2_p=args.chi2_p, nulls=args.nulls
    )
    if len(args.targets) == 2:
        return drift.drift_runs(client, args.targets[0], args.targets[1], thresholds)
    if len(args.targets) == 1:
        return drift.drift_path(client, args.targets[0], ref=args.ref, thresholds=thresholds)
    raise UsageError("drift takes a PATH, or two runs RUN_A RUN_B")


class DriftView:
    """A drift report as a notebook shows it (a table, with its header and footer)."""

    def __init__(self, report: Any, all_columns: bool) -> None:
        self.report, self.all = report, all_columns

    def frame(self) -> Any:
        import pandas as pd

        from ..driftreport import ROW_COLUMNS

        return pd.DataFrame(self.report.rows(all_columns=self.all), columns=ROW_COLUMNS)

    def _repr_html_(self) -> str:
        import html

        head = "".join(f"<b>{html.escape(x)}</b><br>" for x in self.report.header())
        foot = "".join(f"<br>{html.escape(x)}" for x in self.report.footer())
        return head + self.frame().to_html(index=False, na_rep="") + foot

    def __repr__(self) -> str:
        lines = [*self.report.header(), self.frame().to_string(index=False, na_rep="")]
        return "\n".join([*lines, *self.report.footer()])


class GateView:
    """A gate's verdict in a notebook: its one line (and truthy when it passed)."""

    def __init__(self, result: Any) -> None:
        self.result = result

    def __bool__(self) -> bool:
        return bool(self.result)

    def __repr__(self) -> str:
        return str(self.result.line())


def notebook_result(client: Any, args: argparse.Namespace) -> Any:
    """``%track check`` / ``%track drift``: the same work as the CLI, as notebook objects."""
    if args.command == "check":
        return GateView(_gate(client, args))
    return DriftView(_drift_report(client, args), args.all)


def register(sub: Any) -> None:
    """Add the ``check`` and ``drift`` verbs to the ``nbtrack`` parser."""
    p = sub.add_parser(
        "check",
        help="gate on a run's metrics: exit 0 when EXPR holds, 1 when not, 2 on error",
        description=(
            "Evaluate EXPR over the metrics of a run (default: the newest cell run) and print a "
            "one-line verdict. EXPR: comparisons of metric names and numbers joined by and / or / "
            "not, e.g. 'acc >= 0.9 and loss < 0.2'; names with '/' go in backticks "
            "(`system/peak_rss_mb` < 4000). With --against RUN: delta(m), rdelta(m) and base(m) "
            "compare with that run, e.g. 'delta(acc) >= -0.01'. drift.columns, drift.max_psi, "
            "drift.min_ks_p, drift.max_js, drift.min_chi2_p, drift.schema_changes: the drift of "
            "the newest version of each table the run read against the version it read (with "
            "--model: the training data since training). Exit codes: 0 pass, 1 fail, "
            "2 the gate could not be applied (bad expression, missing metric, unknown run)."
        ),
    )
    p.add_argument("expression", metavar="EXPR", help='the gate, e.g. "acc >= 0.9"')
    which = p.add_mutually_exclusive_group()
    which.add_argument("--run", metavar="RUN", help="run id, unique prefix, or 'last' (default)")
    which.add_argument(
        "--last", metavar="NOTEBOOK", help="the newest run of this notebook (its notebook run)"
    )
    which.add_argument(
        "--model",
        metavar="NAME[@ALIAS|/VERSION]",
        help="the run that produced this registered model version",
    )
    p.add_argument("--against", metavar="RUN", help="baseline run for delta()/rdelta()/base()")
    p.add_argument("--json", action="store_true", help="the verdict as JSON")
    p.set_defaults(func=cmd_check)

    from ..driftflags import Thresholds

    d = Thresholds()
    p = sub.add_parser(
        "drift",
        help="per-column drift of a table across its recorded versions, or between two runs",
        description=(
            "PATH: every recorded version of a tabular file (CSV, Parquet, JSON lines), a folder "
            "of tables or a logged DataFrame, in time order, each against a reference version "
            "(the first, or --ref RUN|HASH). RUN_A RUN_B: the inputs of RUN_B against RUN_A's. "
            "Numeric columns: PSI and the two-sample Kolmogorov-Smirnov statistic and p-value; "
            "categorical: Jensen-Shannon distance and Pearson's chi-square p-value; null rates "
            "and schema changes for all. "
            "Computed from stored profiles: old versions are never re-read."
        ),
    )
    p.add_argument("targets", nargs="+", metavar="PATH | RUN_A RUN_B")
    p.add_argument("--ref", metavar="RUN|HASH", help="reference version (default: the first)")
    p.add_argument("--psi", type=float, default=d.psi, help="flag PSI above this (%(default)g)")
    p.add_argument(
        "--ks-p", type=float, default=d.ks_p, help="flag KS p-values below this (%(default)g)"
    )
    p.add_argument(
        "--js", type=float, default=d.js, help="flag Jensen-Shannon above this (%(default)g)"
    )
    p.add_argument(
        "--chi2-p",
        type=float,
        default=d.chi2_p,
        help="flag categorical chi-square p-values below this (%(default)g)",
    )
    p.add_argument(
        "--nulls",
        type=float,
        default=d.nulls,
        help="flag a null-rate change larger than this (%(default)g)",
    )
    p.add_argument("--all", action="store_true", help="every column, not only drifted ones")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_drift)
