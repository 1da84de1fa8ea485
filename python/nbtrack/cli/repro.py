"""``nbtrack repro | dag``: the notebook graph inferred from recorded runs, brought up to date."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from ..exceptions import UsageError
from ..models import RunQuery
from .output import emit_json, format_cell
from .parser import open_client

if TYPE_CHECKING:
    from ..client import Client

EXIT_FAILED = 1
EXIT_GATE_ERROR = 2


def register(sub: Any) -> None:
    """Add the ``repro`` and ``dag`` verbs to the ``nbtrack`` parser."""
    p = sub.add_parser(
        "repro",
        help="re-execute the stale notebooks of the recorded pipeline, upstream first",
        description=(
            "Infer the graph of notebooks from recorded notebook runs (a run that read a version "
            "another notebook's run wrote is downstream of it), judge each selected notebook "
            "against its newest finished run (code, parameters-cell defaults, input and output "
            "versions, stale upstream) and re-execute the stale ones with papermill in the "
            "project folder, upstream first, up to -j at once. TARGET: a notebook, or a data "
            "path (file or folder) whose producers and their upstream are brought up to date; "
            "none: every recorded notebook. Exit code 1 when an execution failed (its "
            "downstream is not run); with --check, 1 when the gate fails, 2 when it cannot be "
            "applied."
        ),
    )
    p.add_argument("targets", nargs="*", metavar="TARGET", help="notebook or data path")
    p.add_argument("--dry-run", action="store_true", help="print the plan, execute nothing")
    p.add_argument(
        "-j", "--jobs", type=int, default=1, metavar="N", help="executions at once (%(default)s)"
    )
    p.add_argument("-f", "--force", action="store_true", help="re-execute every selected notebook")
    p.add_argument(
        "--kernel", metavar="NAME", help="kernel to execute with (default: each notebook's own)"
    )
    p.add_argument(
        "--check",
        metavar="EXPR",
        help="after a successful repro, gate the newest run of each final notebook (see "
        "`nbtrack check`); the gate then decides the exit code",
    )
    p.add_argument("--json", action="store_true", help="print the plan and results as JSON")
    p.set_defaults(func=run_repro)

    p = sub.add_parser(
        "dag",
        help="print the graph of notebooks inferred from recorded runs",
        description=(
            "The notebooks of the recorded pipeline and the data paths that link them, upstream "
            "first: text (one line per edge), Mermaid, Graphviz DOT or JSON. TARGET limits the "
            "graph to what brings it up to date."
        ),
    )
    p.add_argument("targets", nargs="*", metavar="TARGET", help="notebook or data path")
    p.add_argument(
        "--format", choices=("text", "mermaid", "dot", "json"), default="text", help="%(default)s"
    )
    p.set_defaults(func=run_dag)


def run_dag(args: argparse.Namespace) -> int:
    from ..pipelines.dag import Dag, build

    client = open_client(args)
    dag = build(client.notebook_heads())
    if args.targets:
        recorded = [client.project.relative(t)[0] for t in args.targets]
        keep = dag.select(recorded)
        dag = Dag(
            {n: s for n, s in dag.stages.items() if n in keep},
            {
                a: {b: p for b, p in downs.items() if b in keep}
                for a, downs in dag.edges.items()
                if a in keep
            },
        )
    if args.format == "json":
        emit_json(dag.to_dict())
    elif not dag.stages:
        print(f"{_no_pipeline(client)}: nothing to draw", file=sys.stderr)
    else:
        print(getattr(dag, args.format)())
    return 0


def _no_pipeline(client: Client) -> str:
    """Why no notebook is in the graph: what is recorded, and how a run names its notebook.

    ``papermill.execute_notebook`` called from a script with no output notebook is
    recorded, but its kernel cannot tell which notebook it runs (``launcher``: the
    command line names the script, and no output names its input), so it names none and
    cannot be placed in a pipeline.
    """
    found = client.list_runs(RunQuery(kind="notebook", status="finished", limit=0)).total
    if not found:
        return "no finished notebook runs are recorded: run the notebooks once (nbtrack sweep NOTEBOOK)"
    runs = "1 finished notebook run is" if found == 1 else f"{found} finished notebook runs are"
    return (
        f"{runs} recorded, but none names its notebook (papermill called from Python with "
        "no output notebook does not tell the kernel which notebook it runs): run the "
        "notebooks with nbtrack sweep "
        "NOTEBOOK, the papermill command, or set NBTRACK_NOTEBOOK=NOTEBOOK"
    )


def _params_text(parameters: dict[str, Any]) -> str:
    return " ".join(f"{k}={format_cell(v)}" for k, v in parameters.items()) or "its defaults"


def _print_plan(plan: Any) -> None:
    width = max((len(n) for n in plan.order), default=0)
    for name in plan.order:
        step = plan.steps[name]
        verdict = "stale" if step.stale else "skip "
        print(f"{name:<{width}}  {verdict}  {'; '.join(step.reasons)}")


def run_repro(args: argparse.Namespace) -> int:
    """Plan, print, execute; exit code 1 when an execution failed or the gate fails."""
    from ..pipelines.repro import plan_repro
    from ..pipelines.repro import run_repro as execute

    if args.jobs < 1:
        raise UsageError(f"-j must be at least 1, got {args.jobs}")
    client = open_client(args)
    if args.check is not None:
        from ..gates import parse

        parse(args.check)  # a gate that does not parse fails before any execution
    plan = plan_repro(client, args.targets, force=args.force)
    if not plan.order:
        raise UsageError(f"{_no_pipeline(client)}, so repro can infer the pipeline")
    if not args.json:
        _print_plan(plan)
    stale = plan.stale
    if args.dry_run:
        if args.json:
            emit_json({**plan.to_dict(), "dry_run": True})
        else:
            fresh = len(plan.order) - len(stale)
            todo = (
                f"would re-execute {len(stale)} ({', '.join(stale)})" if stale else "nothing to do"
            )
            print(f"dry run: {todo}; {fresh} up to date")
        return 0

    def on_start(notebook: str, request: Any) -> None:
        if not args.json:
            print(f"running {notebook} with {_params_text(request.parameters)}", file=sys.stderr)

    def on_done(step: Any) -> None:
        if args.json:
            return
        if step.ok:
            print(f"{step.notebook}: finished, run {step.run_id[:8]} ({step.duration:.1f} s)")
        else:
            ran = f", run {step.run_id[:8]}" if step.run_id else ""
            print(f"{step.notebook}: {step.status}{ran}: {step.error}")

    def on_warning(message: str) -> None:
        print(f"nbtrack: warning: {message}", file=sys.stderr)

    result = execute(
        client.project,
        plan,
        jobs=args.jobs,
        kernel=args.kernel,
        on_start=on_start,
        on_done=on_done,
        on_warning=on_warning,
    )
    gates: list[Any] = []
    gate_error = None
    if args.check is not None and not result.failed:
        gates, gate_error = _gate(client, args.check, result)
    if args.json:
        emit_json(
            {
                **result.to_dict(),
                "check": [{"notebook": n, **g.to_dict()} for n, g in gates]
                if args.check is not None
                else None,
                "check_error": gate_error,
            }
        )
    else:
        done = len(result.results) - len(result.failed)
        fresh = len(plan.order) - len(stale)
        print(
            f"repro: {done} re-executed, {len(result.failed)} failed or not run, {fresh} up to date"
            if stale
            else f"repro: nothing to do, {fresh} notebook(s) up to date"
        )
        for notebook, gate in gates:
            print(f"{notebook}: {gate.line()}")
    if result.failed:
        return EXIT_FAILED
    if gate_error is not None:
        print(f"nbtrack repro: error: {gate_error}", file=sys.stderr)
        return EXIT_GATE_ERROR
    if gates and not all(g.passed for _, g in gates):
        return EXIT_FAILED
    return 0


def _gate(client: Any, expression: str, result: Any) -> tuple[list[Any], str | None]:
    """The gate on the current run of each final notebook that has the metrics it names.

    A final notebook lacking those metrics (a branch that logs others) is left out; when
    none has them, the gate cannot be applied and the error says why.
    """
    from ..gates import GateMetricError

    plan = result.plan
    gates = []
    last_error = None
    for notebook in plan.dag.sinks(plan.order):
        try:
            gates.append((notebook, client.check(expression, result.current_run(notebook))))
        except GateMetricError as exc:
            last_error = f"{notebook}: {exc}"
    if not gates:
        return [], last_error or "no final notebook to gate"
    return gates, None
