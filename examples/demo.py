"""``make demo``: the examples end to end, typed as a user would type them.

In a fresh ``demo-output/`` folder (ignored by git) it prepares the data, trains the
model with five parameter sets through ``nbtrack sweep`` (papermill underneath),
prints the runs table and the diff of the best and the worst run. Then someone
changes ``data/train.csv`` (the split is prepared again with noisy labels) and the
default training runs again on it; the model of the run before the change is
registered as ``cancer``. Every step is a ``nbtrack`` command, echoed before it runs,
so the output reads like a terminal session you can repeat. At the end it prints the
two training runs around the data change as ``export BEFORE=… AFTER=…``: the README's
tour uses them.

    python examples/demo.py                    # into ./demo-output
    python examples/demo.py --workdir DIR      # anywhere else
    python examples/demo.py --workdir examples # in place (what Binder's postBuild does)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
REPO = EXAMPLES.parent
NOTEBOOKS = ("01_prepare.ipynb", "02_train.ipynb")
# Marks a folder this script made, so a rerun may wipe it and nothing else.
MARKER = ".nbtrack-demo"

# The training grid: three SGD penalties, then gradient boosting at two depths.
SWEEPS = (
    ["-p", "alpha", "0.0001", "0.001", "3.0"],
    ["-p", "model", "gbm", "-p", "max_depth", "1", "3"],
)


def say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - a demo script talks to its user


def command(args: list[str], cwd: Path, env: dict[str, str], capture: bool = False) -> str:
    """Run one command as a user would type it in ``cwd``; echo it first; fail loudly."""
    if not capture:
        say(f"\n$ {shlex.join(args)}")
    done = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        text=True,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
    )
    if done.returncode != 0:
        detail = f"\n{done.stdout}\n{done.stderr}" if capture else ""
        raise SystemExit(
            f"demo: `{shlex.join(args)}` failed with exit code {done.returncode}{detail}"
        )
    return done.stdout or ""


def fresh_workdir(workdir: Path) -> None:
    """An empty demo folder holding the example notebooks and its own ``.nbtrack/``."""
    if workdir.resolve() != EXAMPLES:
        if workdir.exists():
            if not (workdir / MARKER).exists() and any(workdir.iterdir()):
                raise SystemExit(
                    f"demo: {workdir} exists and was not made by the demo; choose another --workdir"
                )
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True)
        (workdir / MARKER).write_text("made by examples/demo.py; deleted by its next run\n")
        # The folder ignores itself, so the demo leaves `git status` clean.
        (workdir / ".gitignore").write_text("*\n")
        for name in NOTEBOOKS:
            shutil.copy2(EXAMPLES / name, workdir / name)
    # Its own store, rather than one at the enclosing git root.
    (workdir / ".nbtrack").mkdir(exist_ok=True)


def user_environment() -> dict[str, str]:
    """This interpreter's tools first on PATH; no NBTRACK_STORE, so the store is found as a user's would be."""
    env = dict(os.environ)
    env.pop("NBTRACK_STORE", None)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def listed(workdir: Path, env: dict[str, str], *args: str) -> list[dict]:
    """The runs ``nbtrack ls --json ARGS`` lists."""
    out = command(
        ["nbtrack", "ls", "--json", "--limit", "10000", *args], workdir, env, capture=True
    )
    return list(json.loads(out)["runs"])


def default_training(workdir: Path, env: dict[str, str]) -> list[dict]:
    """The training runs with the notebook's default parameters, newest first."""
    # Picked here rather than with --where: a filter has a time limit, which a busy
    # machine can reach, and the demo should not fail for that.
    defaults = {"model": "sgd", "alpha": 0.001, "epochs": 20}
    return [
        run
        for run in listed(workdir, env)
        if run["name"] == "train" and all(run["params"].get(k) == v for k, v in defaults.items())
    ]


def best_and_worst(workdir: Path, env: dict[str, str]) -> tuple[dict, dict]:
    """The training runs with the highest and the lowest test accuracy."""
    runs = [r for r in listed(workdir, env) if isinstance(r["metrics"].get("acc"), (int, float))]
    runs.sort(key=lambda r: r["metrics"]["acc"], reverse=True)
    if len(runs) < 2:
        raise SystemExit(
            f"demo: expected several training runs with an accuracy, found {len(runs)}"
        )
    return runs[0], runs[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=REPO / "demo-output",
        help="folder to run in (default: demo-output/)",
    )
    parser.add_argument(
        "-j", "--jobs", type=int, default=2, help="notebook executions at once (default: 2)"
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    workdir = args.workdir.resolve()
    fresh_workdir(workdir)
    env = user_environment()
    say(f"nbtrack demo in {workdir}")

    say(
        "\n# 1. Prepare the data: one tracked execution of 01_prepare.ipynb writes data/train.csv and data/test.csv"
    )
    command(["nbtrack", "sweep", "01_prepare.ipynb"], workdir, env)

    say("\n# 2. Train with five parameter sets, two at a time")
    for grid in SWEEPS:
        command(["nbtrack", "sweep", "02_train.ipynb", *grid, "-j", str(args.jobs)], workdir, env)

    say("\n# 3. Every tracked cell execution is a run")
    command(["nbtrack", "ls"], workdir, env)

    best, worst = best_and_worst(workdir, env)
    say(
        f"\n# 4. What differs between the best run ({best['run_id'][:8]}, acc {best['metrics']['acc']:.3f}) "
        f"and the worst ({worst['run_id'][:8]}, acc {worst['metrics']['acc']:.3f})"
    )
    command(["nbtrack", "diff", best["run_id"][:8], worst["run_id"][:8]], workdir, env)

    say(
        "\n# 5. Someone changes data/train.csv: the split is prepared again, "
        "20 % of the training labels flipped"
    )
    command(["nbtrack", "sweep", "01_prepare.ipynb", "-p", "label_noise", "0.2"], workdir, env)
    say("\n# 6. The same training (the notebook's defaults) on the changed data")
    command(["nbtrack", "sweep", "02_train.ipynb"], workdir, env)
    after, before = default_training(workdir, env)[:2]
    model = next(d["path"] for d in before["data"] if d["path"].startswith("models/"))
    say("\n# 7. The model of the run before the change, registered as `cancer`")
    command(
        # A scikit-learn pipeline in a pickle: the sklearn flavor, which MLflow exports.
        ["nbtrack", "models", "register", before["run_id"][:8], model, "--name", "cancer"]
        + ["--flavor", "sklearn"],
        workdir,
        env,
    )

    say(f"\ndemo finished in {time.perf_counter() - started:.0f} s. Explore it yourself:")
    if sys.prefix != sys.base_prefix:  # the tools are in this virtual environment
        venv = Path(sys.prefix)
        shown = os.path.relpath(venv) if venv.is_relative_to(Path.cwd()) else str(venv)
        say(f"  source {shown}/bin/activate")
    inside = workdir.is_relative_to(Path.cwd())
    say(f"  cd {os.path.relpath(workdir) if inside else workdir}")
    say("  # the default training before and after data/train.csv changed (the README's tour)")
    say(f"  export BEFORE={before['run_id'][:8]} AFTER={after['run_id'][:8]}")
    say("  nbtrack diff $BEFORE $AFTER          # same parameters and code, other data")
    say("  nbtrack rerun $BEFORE                # execute it again and check it reproduces")
    say("  jupyter lab                          # the panel lists, diffs and re-runs these runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
