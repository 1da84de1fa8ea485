"""``nbtrack rerun | sweep | export | import``: papermill pipelines and bundles, from the shell."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from ..exceptions import NbtrackError, UsageError
from .columns import value_headers
from .output import emit_json, emit_table, format_cell, param_cell
from .parser import open_client, project_of

EXIT_NOT_REPRODUCED = 1
EXIT_SOME_FAILED = 1


def register(sub: Any) -> None:
    """Add the ``rerun``, ``sweep``, ``export`` and ``import`` verbs to the ``nbtrack`` parser."""
    from ..pipelines.verdict import DEFAULT_ATOL, DEFAULT_RTOL

    p = sub.add_parser(
        "rerun",
        help="re-execute a run's notebook with its parameters and say whether it reproduced",
        description=(
            "Execute RUN (a cell run or a notebook run) again with papermill: the code its "
            "kernel session actually ran (as executed) when the saved notebook is missing or "
            "does not hold it in that order, else the notebook snapshot recorded with it, with "
            "the parameters injected again. By default in a scratch copy of the project under "
            ".nbtrack/reruns/ whose inputs are the versions RUN read (your files are not "
            "touched), in the recorded kernel. The result is a new notebook run linked to RUN. "
            "Then compare: reproduced means the same metrics (within --rtol/--atol), the same "
            "output hashes and the same input versions; otherwise every difference is listed, "
            "environment differences too. Exit code 0: reproduced; 1: not."
        ),
    )
    p.add_argument("run", metavar="RUN", help="run id, unique prefix, or 'last'")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--as-executed",
        dest="mode",
        action="store_const",
        const="as-executed",
        help="replay the cells the kernel session ran, in the order they ran",
    )
    mode.add_argument(
        "--as-saved",
        dest="mode",
        action="store_const",
        const="as-saved",
        help="execute the saved notebook snapshot (parameters injected again)",
    )
    p.add_argument(
        "--in-place",
        action="store_true",
        help="execute in the project folder itself (inputs checked out as `checkout` would)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="with --in-place: overwrite files that match no recorded version",
    )
    p.add_argument(
        "--kernel", metavar="NAME", help="kernel to execute with (default: the recorded one)"
    )
    p.add_argument(
        "--env",
        choices=("current", "recorded"),
        default="current",
        help="current: the kernel's environment (default); recorded: an environment with the "
        "recorded package versions, built once with uv and reused",
    )
    p.add_argument(
        "--remote",
        metavar="URL",
        help="fetch inputs missing from the workspace and the cache from this remote (as pull)",
    )
    p.add_argument(
        "--strict-env",
        action="store_true",
        help="any difference from the recorded environment means not reproduced",
    )
    p.add_argument(
        "--current",
        action="store_true",
        help="execute the notebook file as it is today instead of the run's snapshot",
    )
    p.add_argument(
        "-p",
        "--parameter",
        dest="parameters",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="override a parameter (repeatable); values parse like papermill's -p",
    )
    p.add_argument(
        "--rtol", type=float, default=DEFAULT_RTOL, help="relative metric tolerance (%(default)g)"
    )
    p.add_argument(
        "--atol", type=float, default=DEFAULT_ATOL, help="absolute metric tolerance (%(default)g)"
    )
    p.add_argument(
        "--check",
        metavar="EXPR",
        help="gate the rerun's metrics (see `nbtrack check`; delta() compares with RUN); "
        "the gate, not reproduction, then decides the exit code",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run_rerun)

    p = sub.add_parser(
        "sweep",
        help="execute a notebook over a parameter grid, in parallel, and tabulate the runs",
        description=(
            "Execute NOTEBOOK with papermill once per point of the grid of -p values (or "
            "--random K points of it), up to -j at once, each execution a notebook run tagged "
            "sweep=<id>. A failed execution is recorded with its error; the others go on. "
            "Prints the runs sorted by --sort. Exit code 1 if any execution failed."
        ),
    )
    p.add_argument("notebook", metavar="NOTEBOOK", help="the .ipynb to execute")
    p.add_argument(
        "-p",
        "--parameter",
        dest="parameters",
        nargs="+",
        action="append",
        metavar=("NAME", "VALUE"),
        help="a parameter and its values, e.g. -p lr 0.1 0.01 (repeatable: the grid is the product)",
    )
    p.add_argument("--random", type=int, metavar="K", help="execute K random points of the grid")
    p.add_argument(
        "--seed", type=int, metavar="S", help="seed of --random (same seed, same points)"
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        metavar="N",
        help="executions at once (local: default 1; dask: default all, the cluster decides)",
    )
    p.add_argument("--executor", default="local", help="local (process pool, default) or dask")
    p.add_argument(
        "--scheduler", metavar="ADDRESS", help="Dask scheduler address, for --executor dask"
    )
    p.add_argument(
        "--sort", metavar="METRIC", help="sort the table by this metric, best (highest) first"
    )
    p.add_argument("--asc", action="store_true", help="with --sort: lowest first (for losses)")
    p.add_argument(
        "--kernel", default="python3", metavar="NAME", help="kernel to execute with (%(default)s)"
    )
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="time limit per cell")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the sweep as JSON")
    p.set_defaults(func=run_sweep)

    p = sub.add_parser(
        "export",
        help="write runs, with the cached blobs they reference, to a bundle file",
        description=(
            "Write a bundle (a zip: run records, referenced cache blobs, executed notebooks) of "
            "each RUN, its notebook run and, for a notebook run, its cell runs. `nbtrack import` "
            "reads it into another store."
        ),
    )
    p.add_argument("runs", metavar="RUN", nargs="+", help="run ids, unique prefixes, or 'last'")
    p.add_argument("-o", "--output", metavar="FILE", help="bundle file to write (default: stdout)")
    p.add_argument("--json", action="store_true", help="print what was exported as JSON (needs -o)")
    p.set_defaults(func=run_export)

    p = sub.add_parser(
        "import",
        help="add the runs and blobs of a bundle to this store (idempotent)",
        description="Read a bundle written by `nbtrack export` ('-' for stdin); what is already here is skipped.",
    )
    p.add_argument("bundle", metavar="FILE", help="bundle file, or - for stdin")
    p.add_argument("--json", action="store_true", help="print what was imported as JSON")
    p.set_defaults(func=run_import)


def _warn(messages: list[str]) -> None:
    for message in messages:
        print(f"nbtrack: warning: {message}", file=sys.stderr)


def _shown_path(path: str | None) -> str:
    if not path:
        return "-"
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _params_text(parameters: dict[str, Any]) -> str:
    return " ".join(f"{k}={format_cell(v)}" for k, v in parameters.items()) or "no parameters"


def run_rerun(args: argparse.Namespace) -> int:
    """Re-execute ``args.run`` and print the verdict; exit code 1 when it did not reproduce."""
    from ..pipelines.execute import skip_unused_imports
    from ..pipelines.parameters import parse_assignments
    from ..pipelines.recording import current_environment
    from ..pipelines.rerun import RerunOptions, environment_warning, execute_plan, plan_rerun

    skip_unused_imports()

    overrides = parse_assignments(args.parameters)
    client = open_client(args)
    if args.check is not None:
        from ..gates import parse

        parse(args.check)  # a gate that does not parse fails before the execution
    options = RerunOptions(
        current=args.current,
        mode=args.mode,
        in_place=args.in_place,
        force=args.force,
        kernel=args.kernel,
        env=args.env,
        strict_env=args.strict_env,
        remote=args.remote,
    )
    if args.force and not args.in_place:
        raise UsageError("--force only applies with --in-place (a scratch copy overwrites nothing)")
    plan = plan_rerun(client, args.run, overrides=overrides, options=options)
    env_note = environment_warning(plan, current_environment(Path(client.project.folder)))
    _warn(plan.warnings + ([env_note] if env_note else []))
    if not args.json:
        notebook = _shown_path(plan.request.notebook)
        print(
            f"re-running {plan.original.short_id}: {notebook} ({plan.notebook_source}) "
            f"with {_params_text(plan.request.parameters)}\n"
            f"mode: {plan.choice.mode} ({plan.choice.reason})\n"
            f"kernel: {plan.request.kernel_name} ({plan.kernel_reason})",
            file=sys.stderr,
        )
    result = execute_plan(client.project, plan, rtol=args.rtol, atol=args.atol)
    _warn(result.warnings[len(plan.warnings) :])  # (what the execution itself showed)
    gate = None
    if args.check is not None:
        gate = client.check(args.check, result.run_id, against=plan.original.run_id)
    if args.json:
        emit_json({**result.to_dict(), "check": gate.to_dict() if gate else None})
    else:
        status = result.status if not result.error else f"{result.status}: {result.error}"
        print(f"new run {result.run_id[:8]} ({status}), {len(result.child_ids)} cell run(s)")
        print(f"executed notebook: {_shown_path(result.executed_notebook)}")
        where = _shown_path(result.workspace) if result.workspace else "in place"
        print(f"workspace: {where}")
        print(f"  {result.workspace_detail}", file=sys.stderr)
        print(f"environment: {result.environment}")
        for line in result.verdict.lines():
            print(line)
        if gate is not None:
            print(gate.line())
    if gate is not None:
        return 0 if gate.passed else EXIT_NOT_REPRODUCED
    return 0 if result.reproduced else EXIT_NOT_REPRODUCED


def run_sweep(args: argparse.Namespace) -> int:
    """Plan, execute and tabulate a sweep; exit code 1 when any execution failed."""
    from ..pipelines.parameters import parse_axes
    from ..pipelines.sweep import plan_sweep
    from ..pipelines.sweep import run_sweep as execute_sweep

    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"-j must be at least 1, got {args.jobs}")
    plan = plan_sweep(
        args.notebook,
        parse_axes(args.parameters),
        random_k=args.random,
        seed=args.seed,
        kernel_name=args.kernel,
        execution_timeout=args.timeout,
        executor=args.executor,
    )
    project = project_of(args, Path(args.notebook).parent)
    _warn(plan.warnings)
    progress = None
    if not args.no_progress:
        from tqdm import tqdm

        progress = tqdm(
            total=len(plan.requests), desc=f"sweep {plan.sweep_id}", unit="run", file=sys.stderr
        )
    failed = 0

    def on_done(record: Any) -> None:
        nonlocal failed
        failed += 0 if record.ok else 1
        if progress is not None:
            progress.set_postfix(failed=failed, refresh=False)
            progress.update(1)

    try:
        result = execute_sweep(
            project,
            plan,
            executor=args.executor,
            jobs=args.jobs,
            scheduler=args.scheduler,
            on_done=on_done,
        )
    finally:
        if progress is not None:
            progress.close()
    _warn(result.warnings[len(plan.warnings) :])  # (a swept value a later cell set again)
    sort = args.sort
    if sort is not None and sort not in result.metric_keys:  # it ran: the table all the same
        known = ", ".join(result.metric_keys) or "none were logged"
        _warn([f"--sort {sort}: no such metric in this sweep (metrics: {known}); in grid order"])
        sort = None
    rows = result.sorted_rows(sort, args.asc)
    if args.json:
        emit_json(result.to_dict(sort, args.asc))
    else:
        # The ids are notebook runs' (one per execution); `ls --parent` lists their cell runs.
        # (a metric named like a swept parameter, a decayed lr: both prefixed)
        fields = ("notebook_run", "status")
        named = value_headers(result.param_keys, result.metric_keys, fields)
        columns = [*fields, *named.values()]
        emit_table(
            columns,
            [
                [
                    r.record.run_id[:8],
                    r.record.status,
                    *(param_cell(r.record.parameters.get(k)) for k in result.param_keys),
                    *(r.metrics.get(k) for k in result.metric_keys),
                ]
                for r in rows
            ],
        )
        print(f"sweep {result.sweep_id}: {len(rows)} execution(s), {len(result.failed)} failed")
        for r in result.failed:
            print(f"  {r.record.run_id[:8]} failed: {r.record.error}")
        if rows:
            first = rows[0].record
            print(
                f"cell runs of the sweep: nbtrack ls --parent {result.sweep_id}; "
                f"of one execution: nbtrack ls --parent {first.run_id[:8]}"
            )
            if first.executed_notebook:
                print(
                    f"executed notebooks: {_shown_path(first.executed_notebook)} "
                    "(one per run id in that folder)"
                )
    return EXIT_SOME_FAILED if result.failed else 0


def run_export(args: argparse.Namespace) -> int:
    """Write the bundle of ``args.runs`` to ``-o FILE`` or stdout."""
    from ..pipelines.bundle import export_runs

    if args.output is not None and not args.output.strip():
        raise UsageError("-o names no file: give the bundle's path, or - for stdout")
    client = open_client(args)
    if args.output in (None, "-"):
        if args.json:
            raise UsageError("--json prints to stdout, where the bundle would go: use -o FILE")
        if sys.stdout.isatty():
            raise UsageError("a bundle is binary: use -o FILE, or redirect stdout to a file")
        summary = export_runs(client, args.runs, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        target = "stdout"
    else:
        target = args.output
        tmp = Path(f"{args.output}.part")
        try:
            with open(tmp, "wb") as out:
                summary = export_runs(client, args.runs, out)
            os.replace(tmp, args.output)
        except OSError as exc:  # no such folder, a full disk, /proc
            raise NbtrackError(
                f"cannot write the bundle {args.output} ({exc.strerror or exc}): "
                "give -o a path in a writable folder with room"
            ) from None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
    if args.json:
        emit_json({**summary.to_dict(), "bundle": target})
        return 0
    print(
        f"exported {len(summary.runs)} run(s), {len(summary.blobs)} blob(s), "
        f"{len(summary.executions)} executed notebook(s) to {target}",
        file=sys.stderr,
    )
    if summary.missing_blobs:
        _warn(
            [
                f"{len(summary.missing_blobs)} referenced blob(s) are not in the cache and were left out"
            ]
        )
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Import the bundle ``args.bundle`` into this store."""
    from ..pipelines.bundle import import_bundle

    client = open_client(args)
    if args.bundle == "-":
        summary = import_bundle(client, sys.stdin.buffer.read(), name="stdin")
    else:
        try:
            with open(args.bundle, "rb") as fh:
                summary = import_bundle(client, fh, name=args.bundle)
        except FileNotFoundError:
            raise UsageError(f"no such bundle: {args.bundle}") from None
    if args.json:
        emit_json(summary.to_dict())
        return 0
    print(
        f"imported {len(summary.runs)} run(s) ({summary.skipped_runs} already here), "
        f"{len(summary.blobs)} blob(s) ({summary.skipped_blobs} already here), "
        f"{len(summary.executions)} executed notebook(s), {len(summary.models)} model version(s)"
    )
    return 0
