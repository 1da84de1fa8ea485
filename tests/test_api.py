"""The public names of ``nbtrack`` (``__init__.py``), called as a notebook calls them."""

from __future__ import annotations

import json

# Imports every nbtrack module a notebook may end up importing, then reports any
# public name that is no longer the documented function (a submodule of the same
# name replaces a package attribute when it is imported).
CHECK_NAMES = """
import importlib, inspect, json, pkgutil, types
import nbtrack
for mod in pkgutil.walk_packages(nbtrack.__path__, "nbtrack."):
    if mod.name.endswith("__main__"):  # runs the command line
        continue
    try:
        importlib.import_module(mod.name)
    except ImportError:  # an optional extra (dask) that is not installed
        pass
kinds = {n: type(getattr(nbtrack, n)).__name__ for n in nbtrack.__all__}
print(json.dumps(kinds))
"""


def test_every_public_name_is_the_documented_function_after_load_ext(kernel_factory, project_dir):
    # Given a notebook that loaded the extension and ran a tracked cell
    k = kernel_factory()
    k.ok("%load_ext nbtrack\nimport nbtrack")
    kinds = json.loads(k.ok(CHECK_NAMES).text)
    # Then no public name was replaced by a module of the same name (nbtrack.diff was)
    assert kinds.pop("__version__") == "str"
    assert kinds == dict.fromkeys(kinds, "function")
    core = {"active_run", "diff", "get_run", "load_ipython_extension", "log_dataset"}
    assert core | {"log_metric", "log_metrics", "log_param", "log_params", "runs"} <= set(kinds)

    # When each logging function is called inside a tracked cell
    first = k.ok(
        "%%track api\n"
        "import pandas as pd\n"
        "nbtrack.log_param('p', 1)\n"
        "nbtrack.log_params({'q': 'two'})\n"
        "nbtrack.log_metric('m', 0.5)\n"
        "nbtrack.log_metrics({'n': 1.5, 'o': 2.5})\n"
        "nbtrack.log_dataset(pd.DataFrame({'x': [1, 2]}), 'frame')\n"
        "first_id = nbtrack.active_run().run_id\n"
        "print(first_id)"
    )
    first_id = first.text.split()[0]
    k.ok("%%track api\nnbtrack.log_param('p', 2)\nsecond_id = nbtrack.active_run().run_id")

    # Then the reading functions return what the docs say they return
    shown = k.ok(
        "import time\n"
        "deadline = time.monotonic() + 30\n"
        "while len(nbtrack.runs()) < 2 and time.monotonic() < deadline:\n"
        "    time.sleep(0.1)\n"
        "frame = nbtrack.runs()\n"
        "d = nbtrack.diff(first_id, second_id)\n"
        "run = nbtrack.get_run(first_id)\n"
        "print(type(frame).__name__, len(frame), type(d).__name__, bool(d))\n"
        "logged = {k: v for k, v in run.metrics.items() if not k.startswith('system/')}\n"
        "print(nbtrack.active_run(), run.params, logged, [v.path for v in run.data])\n"
        "print(sorted(c.key for c in d.params))\n"
        "print(callable(nbtrack.load_ipython_extension))"
    )
    lines = shown.text.splitlines()
    assert lines[0] == "DataFrame 2 RunDiff True"
    assert lines[1] == "None {'p': 1, 'q': 'two'} {'m': 0.5, 'n': 1.5, 'o': 2.5} ['frame']"
    assert lines[2] == "['p', 'q']" and lines[3] == "True"
    assert len(first_id) == 32


def test_runs_gives_an_integer_parameter_some_runs_lack_as_integers_and_na(kernel):
    """A new user's trial: ``epochs`` came back as 3.0 and NaN, a float column."""
    kernel.ok("%%track fit\nepochs = 3\nbatch = 32\nlr = 0.5")
    kernel.ok("%%track fit\nbatch = 64\nlr = 2")  # this run has no epochs; lr: 2, then 0.5
    shown = kernel.ok(
        "frame = nbtrack.runs().sort_values('started_at')\n"
        "for col in ('params.epochs', 'params.batch', 'params.lr'):\n"
        "    print(col, frame[col].dtype, frame[col].tolist())"
    )
    assert shown.text.splitlines() == [
        "params.epochs Int64 [3, <NA>]",
        "params.batch Int64 [32, 64]",
        "params.lr float64 [0.5, 2.0]",
    ]
