"""Speed of the model registry (issue 11), each case against a baseline in the same run.

    .venv/bin/python benchmarks/bench_models.py [--mb 100] [--models 1000] [--versions 10]
                                                [--repeat 5] [--mlflow-python PATH]

Cases (medians of --repeat runs, the page cache warm):
1. ``nbtrack.load_model`` of a ~100 MB scikit-learn model (joblib format) from the local
   cache, hash check included, vs ``joblib.load`` of the same file (target: within 10 %);
2. ``models ls`` and ``models show NAME@champion`` in process on a registry of 1,000
   models x 10 versions (target: < 100 ms each);
3. ``nbtrack models ls`` and ``nbtrack models show NAME@champion`` as new processes, the
   way a user types them, on the same registry (target: < 100 ms): median of 10 wall and
   CPU times, beside ``python -c pass`` and ``python -c "import duckdb"`` (fixed costs);
4. MLflow on the same operations (register a version, set an alias, load by alias) when
   an MLflow is importable here or given with ``--mlflow-python`` (its own venv: it is
   not a dependency); the ratio is printed, or why it was skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import nbtrack
from nbtrack.cli.models import lineage_lines
from nbtrack.client import Client
from nbtrack.project import resolve_project
from nbtrack.registry.core import Registry
from nbtrack.tracking import RunWriter, set_active


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall time and median CPU time of this process (on a busy machine, the
    part of the wall time that was ours)."""
    walls, cpus = [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def big_forest(mb: float) -> Any:
    """Extremely randomized trees grown to about ``mb`` megabytes (fast to fit)."""
    from sklearn.ensemble import ExtraTreesRegressor

    rng = np.random.default_rng(0)
    rows = int(35_000 * mb / 100)
    X = rng.normal(size=(rows, 4))
    y = X[:, 0] + rng.normal(size=rows)
    return ExtraTreesRegressor(n_estimators=20, max_features=1, random_state=0, n_jobs=2).fit(X, y)


def tracked_log(client: Client, model: Any, name: str, **kw: Any) -> Any:
    writer = RunWriter.start(client.project, name="bench")
    set_active(writer)
    try:
        return nbtrack.log_model(model, name, **kw)
    finally:
        set_active(None)
        writer.finish()
        writer.wait()


def case_load(client: Client, mb: float, repeat: int) -> dict[str, float]:
    import joblib

    model = big_forest(mb)
    start = time.perf_counter()
    v = tracked_log(client, model, "forest", format="joblib")
    log_s = time.perf_counter() - start
    blob = client.cache.path_for(v.hash)
    Registry(client).set_alias("forest", 1, "champion")
    first = timed(lambda: nbtrack.load_model("models:/forest/1"), 1)  # store read + hash
    refs = {"by number": "models:/forest/1", "by alias": "models:/forest@champion"}
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in (*refs, "joblib")}
    for _ in range(repeat):  # interleaved, so all see the same load on a shared machine
        for label, ref in refs.items():
            times[label].append(timed(lambda r=ref: nbtrack.load_model(r), 1))  # type: ignore[misc]
        times["joblib"].append(timed(lambda: joblib.load(blob), 1))
    med = {k: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v))
           for k, v in times.items()}  # fmt: skip
    base = med["joblib"]
    print(
        f"1. load_model of a {v.size / 1e6:.0f} MB forest vs joblib.load of the same file "
        f"(target within 10 %), log_model took {log_s:.1f} s:\n   joblib.load wall "
        f"{base[0] * 1000:.0f} ms, cpu {base[1] * 1000:.0f} ms\n   load_model first in "
        f"this process (store read, full re-hash) wall {first[0] * 1000:.0f} ms, cpu "
        f"{first[1] * 1000:.0f} ms"
    )
    for label in refs:
        wall, cpu = med[label]
        print(
            f"   load_model {label:9s} wall {wall * 1000:.0f} ms ({100 * (wall / base[0] - 1):+.1f} %), "
            f"cpu {cpu * 1000:.0f} ms ({100 * (cpu / base[1] - 1):+.1f} %)"
        )
    return med


def _synthetic_registry(models: int, versions: int) -> dict[str, list[dict[str, Any]]]:
    now = "2026-01-01T00:00:00"
    sig = {"inputs": [{"name": f"x{i}", "type": "double", "required": True} for i in range(8)]}
    dump: dict[str, list[dict[str, Any]]] = {
        "registered_models": [], "model_versions": [], "model_alias_history": [],
    }  # fmt: skip
    for m in range(models):
        name = f"model-{m:04d}"
        dump["registered_models"].append(
            {"name": name, "created_at": now, "updated_at": now, "description": None, "tags": "{}"}
        )
        for v in range(1, versions + 1):
            dump["model_versions"].append({
                "name": name, "version": v, "version_id": uuid.uuid4().hex, "flavor": "sklearn",
                "flavor_meta": '{"format": "skops"}', "signature": json.dumps(sig),
                "input_example": None, "env": '{"python": "3.11"}', "hash": f"xxh3:{m:016x}{v:016x}",
                "size": 1000 + v, "file_name": "model.skops", "run_id": None, "source_path": None,
                "created_at": now, "description": None, "tags": "{}", "archived": False,
            })  # fmt: skip
        dump["model_alias_history"].append({
            "move_id": uuid.uuid4().hex, "name": name, "alias": "champion", "seq": 1,
            "moved_at": now, "from_version": None, "to_version": versions, "host": "h",
            "user_name": "u",
        })  # fmt: skip
    return dump


def case_listing(client: Client, models: int, versions: int, repeat: int) -> dict[str, float]:
    start = time.perf_counter()
    client.load_registry(_synthetic_registry(models, versions))
    built = time.perf_counter() - start
    print(f"   ({models} models x {versions} versions built in {built:.1f} s)")
    reg = Registry(client)
    ls = timed(lambda: reg.models(), repeat)
    show = timed(lambda: lineage_lines(reg.lineage("model-0500@champion")), repeat)
    versions_ls = timed(lambda: reg.versions("model-0500"), repeat)
    floor = timed(client.info, repeat)  # one connection and a one-row query
    print(
        f"2. in process, {models} models x {versions} versions, wall (cpu) ms, "
        f"target < 100 ms:\n   models ls {ls[0] * 1000:.1f} ({ls[1] * 1000:.1f}), "
        f"models show {show[0] * 1000:.1f} ({show[1] * 1000:.1f}), models ls NAME "
        f"{versions_ls[0] * 1000:.1f} ({versions_ls[1] * 1000:.1f}); for scale, one "
        f"connection to the store (client.info) {floor[0] * 1000:.1f} ({floor[1] * 1000:.1f})"
    )
    return {"ls": ls, "show": show, "versions": versions_ls, "floor": floor}


def process_times(argv: list[str], env: dict[str, str], runs: int = 10) -> tuple[float, float]:
    """Median wall and CPU (user + system) seconds of a new process running ``argv``,
    after one warm-up run (page cache, bytecode)."""
    walls, cpus = [], []
    for i in range(runs + 1):
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - start)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise SystemExit(f"{argv} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
        if proc.stderr:
            proc.stderr.close()
        if i:
            cpus.append(usage.ru_utime + usage.ru_stime)
        else:
            walls.pop()
    return statistics.median(walls), statistics.median(cpus)


def case_commands(client: Client, models: int, versions: int) -> dict[str, tuple[float, float]]:
    client.load_registry(_synthetic_registry(models, versions))
    py = sys.executable
    script = Path(py).with_name("nbtrack")
    cli = [str(script)] if script.exists() else [py, "-m", "nbtrack"]
    cases = {
        "python -c pass": [py, "-c", "pass"],
        "python -c 'import duckdb'": [py, "-c", "import duckdb"],
        "nbtrack models ls": [*cli, "models", "ls"],
        "nbtrack models show": [*cli, "models", "show", "model-0500@champion"],
    }
    # As installed: bytecode compiled once and kept (here in a folder of its own, so a
    # PYTHONDONTWRITEBYTECODE environment does not make every start compile the sources).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "nbtrack-bench-pycache")
    out = {label: process_times(argv, env) for label, argv in cases.items()}
    print("3. as new processes, median of 10, wall (cpu) ms, target < 100 ms:")
    for label, (wall, cpu) in out.items():
        print(f"   {label:28s} {wall * 1000:6.1f} ({cpu * 1000:.1f})")
    return out


MLFLOW_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, warnings
    warnings.simplefilter("ignore")
    import mlflow, mlflow.sklearn
    from mlflow import MlflowClient
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    mlflow.set_tracking_uri("sqlite:///" + sys.argv[1] + "/mlflow.db"
                            if sys.argv[2] == "sqlite" else "file:" + sys.argv[1] + "/mlruns")
    X, y = load_iris(return_X_y=True, as_frame=True)
    clf = LogisticRegression(max_iter=300).fit(X, y)
    out = {"register": [], "alias": [], "load": []}
    client = MlflowClient()
    for i in range(int(sys.argv[3])):
        with mlflow.start_run():
            t = time.perf_counter()
            info = mlflow.sklearn.log_model(clf, name="model", input_example=X[:5],
                                            registered_model_name="churn")
            out["register"].append(time.perf_counter() - t)
        t = time.perf_counter()
        client.set_registered_model_alias("churn", "champion", info.registered_model_version)
        out["alias"].append(time.perf_counter() - t)
        t = time.perf_counter()
        mlflow.sklearn.load_model("models:/churn@champion")
        out["load"].append(time.perf_counter() - t)
    print(json.dumps(out))
    """
)


def mlflow_python(given: str | None) -> str | None:
    if given:
        return given
    return sys.executable if importlib.util.find_spec("mlflow") else None


def case_compare(client: Client, python: str | None, repeat: int) -> dict[str, Any] | None:
    if python is None:
        print(
            "4. MLflow comparison skipped: mlflow is not importable here and no "
            "--mlflow-python was given (it is not a dependency; see benchmarks/README.md)"
        )
        return None
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    clf = LogisticRegression(max_iter=300).fit(X, y)
    ours: dict[str, list[float]] = {"register": [], "alias": [], "load": []}
    reg = Registry(client)
    for _ in range(repeat):
        t = time.perf_counter()
        v = tracked_log(client, clf, "churn", input_example=X[:5])
        ours["register"].append(time.perf_counter() - t)
        t = time.perf_counter()
        reg.set_alias("churn", v.version, "champion")
        ours["alias"].append(time.perf_counter() - t)
        t = time.perf_counter()
        nbtrack.load_model("models:/churn@champion")
        ours["load"].append(time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"
        env["MLFLOW_ALLOW_FILE_STORE"] = "true"  # mlflow-skinny has no SQL store
        theirs = None
        for backend in ("sqlite", "file"):
            done = subprocess.run(
                [python, "-c", MLFLOW_SCRIPT, tmp, backend, str(repeat)],
                capture_output=True, text=True, env=env, timeout=1800,
            )  # fmt: skip
            if done.returncode == 0:
                theirs = json.loads(done.stdout.strip().splitlines()[-1])
                break
            reason = (done.stderr.strip().splitlines() or ["?"])[-1]
            print(f"   MLflow with a {backend} store failed: {reason}")
    if theirs is None:
        print("4. MLflow comparison skipped: MLflow could not run the operations (above)")
        return None
    print(f"4. MLflow ({backend} store) vs nbtrack, medians of {repeat}:")
    result = {}
    for op in ("register", "alias", "load"):
        a, b = statistics.median(ours[op]), statistics.median(theirs[op])
        result[op] = {"nbtrack_s": a, "mlflow_s": b, "mlflow_over_nbtrack": b / a}
        print(
            f"   {op:9s} nbtrack {a * 1000:7.1f} ms  mlflow {b * 1000:7.1f} ms  ratio {b / a:.2f}x"
        )
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=float, default=100, help="size of the model in case 1")
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--versions", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--mlflow-python", help="a Python whose environment has mlflow")
    ap.add_argument("--only", choices=["1", "2", "3", "4"], help="run one case")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        for case in ("1", "2", "3", "4"):
            if args.only and case != args.only:
                continue
            folder = Path(tmp) / f"case{case}"
            (folder / ".nbtrack").mkdir(parents=True)
            os.chdir(folder)
            client = Client(resolve_project(folder))
            if case == "1":
                case_load(client, args.mb, args.repeat)
            elif case == "2":
                case_listing(client, args.models, args.versions, args.repeat)
            elif case == "3":
                case_commands(client, args.models, args.versions)
            else:
                case_compare(client, mlflow_python(args.mlflow_python), args.repeat)


if __name__ == "__main__":
    main()
