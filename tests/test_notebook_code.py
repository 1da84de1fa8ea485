"""Notebook code a tracked cell calls, written the ways users write it: what the record says.

Each test is a reproducer from a new user's seventh trial (issue 15).
"""

from __future__ import annotations

from conftest import run_cli
from test_lineage import _cell_runs
from test_magics import _settle

DECORATED = """
import functools
gamma = 0.5

def timed(fn):
    @functools.wraps(fn)
    def wrapper(*a, **k):
        return fn(*a, **k)
    return wrapper

def logged(fn):
    def inner():
        return fn()
    return inner

@timed
def train():
    return gamma * 2

@logged
def evaluate():
    return depth

@functools.lru_cache(maxsize=None)
def cached_fit(n):
    return rate + n
"""


def test_a_decorated_notebook_function_is_followed_to_the_function_it_wraps(project_dir, kernel):
    """``@timed def train(): return gamma * 2``: the cell runs the wrapper, whose code
    reads only its closure's ``fn``; gamma was recorded nowhere, so changing it changed
    the score with no parameter to explain it. Likewise ``@functools.lru_cache``, whose
    wrapper was a named input pickled for its fingerprint."""
    kernel.ok("depth = 3\nrate = 0.1\n" + DECORATED, cell_id="defs")
    first = kernel.ok("%%track fit\nscore = train() + evaluate() + cached_fit(1)", cell_id="fit")
    kernel.ok("gamma = 0.25", cell_id="config")
    second = kernel.ok("%%track fit\nscore = train() + evaluate() + cached_fit(1)", cell_id="fit")
    a, b = _cell_runs(_settle(project_dir), "fit")
    assert a.params == {"gamma": 0.5, "depth": 3, "rate": 0.1}
    assert b.params["gamma"] == 0.25 and b.param_sources["gamma"] == "upstream"
    assert "gamma=0.5" in first.text and "param gamma: 0.5 → 0.25" in second.text
    assert "cached_fit" not in {i.name for i in a.named_inputs}
    # The wrapper looks gamma up when called: it is read as it is now, never stale
    assert "stale" not in second.text and not any(i.stale for i in b.named_inputs)


def test_a_project_module_imported_by_an_earlier_cell_is_an_input_of_the_cell_using_it(
    project_dir, kernel
):
    """``import settings`` in the imports cell, ``settings.LR`` in the tracked one (or in
    a notebook function it calls): the run recorded no input and no parameter, so LR
    edited and the module reloaded changed the result with nothing in the record."""
    (project_dir / "settings.py").write_text("LR = 0.1\nEPOCHS = 3\n")
    kernel.ok("import importlib\nimport settings", cell_id="imports")
    kernel.ok("def epochs():\n    return settings.EPOCHS", cell_id="defs")
    kernel.ok("%%track fit\nv = settings.LR * epochs()", cell_id="fit")
    kernel.ok("%%track calls\nn = epochs()", cell_id="calls")
    (project_dir / "settings.py").write_text("LR = 0.5\nEPOCHS = 3\n")
    kernel.ok("importlib.reload(settings)", cell_id="reload")
    second = kernel.ok("%%track fit\nv = settings.LR * epochs()", cell_id="fit").text
    client = _settle(project_dir)
    a, b = _cell_runs(client, "fit")
    (calls,) = _cell_runs(client, "calls")
    assert [d.path for d in a.data] == [d.path for d in b.data] == ["settings.py"]
    assert [(d.path, d.role) for d in calls.data] == [("settings.py", "input")]
    assert a.data[0].hash != b.data[0].hash
    assert "input settings.py: changed" in second, second


def test_a_parameter_notebook_code_rebinds_with_global_is_recorded_as_the_cell_left_it(
    project_dir, kernel
):
    """``def set_lr(v): global LR; LR = v`` and ``fit()`` reading LR: the cell
    ``set_lr(0.9); fit()`` trained with 0.9 and the record said ``LR=0.1``, the value
    at the cell's start. A parameter no code rebinds keeps its value at the start."""
    kernel.ok(
        "LR = 0.1\nSEED = 1\ndef set_lr(v):\n    global LR\n    LR = v\n"
        "def fit():\n    return LR * 10 + SEED",
        cell_id="defs",
    )
    out = kernel.ok("%%track fit\nset_lr(0.9)\nres = fit()", cell_id="fit").text
    run = _settle(project_dir).get_run("last")
    assert run.params == {"LR": 0.9, "SEED": 1}
    assert run.param_sources["SEED"] == "upstream"
    assert "LR=0.9" in out and "param LR changed by the cell: 0.1 → 0.9" in out, out


TRAINING_ARGUMENTS = """
from dataclasses import dataclass, field, make_dataclass
import numpy as np

@dataclass
class Precision:
    dtype: np.dtype = field(default_factory=lambda: np.dtype("float16"))
    loss_scale: float = 128.0

fields = [(f"option_{i}", int, i) for i in range(90)]
TrainingArguments = make_dataclass(
    "TrainingArguments",
    [*fields, ("learning_rate", float, 5e-5), ("precision", Precision, field(default_factory=Precision))],
)
args = TrainingArguments(learning_rate=3e-5)
"""


def test_a_config_of_many_fields_and_a_dtype_is_a_parameter_not_an_opaque_input(
    project_dir, kernel
):
    """HuggingFace's ``TrainingArguments`` is a dataclass of ~120 fields, some of them
    dtypes: past 50 fields, or with one dtype, the whole config was a named input known
    by a fingerprint, and ``args.learning_rate`` changed said only ``read args: changed``."""
    kernel.ok(TRAINING_ARGUMENTS, cell_id="config")
    kernel.ok("%%track fit\nscore = args.learning_rate * 2", cell_id="fit")
    kernel.ok("args.learning_rate = 9e-5", cell_id="tweak")
    second = kernel.ok("%%track fit\nscore = args.learning_rate * 2", cell_id="fit").text
    a, b = _cell_runs(_settle(project_dir), "fit")
    assert a.params["args"]["learning_rate"] == 3e-5 and len(a.params["args"]) == 92
    assert a.params["args"]["precision"] == {"dtype": "float16", "loss_scale": 128.0}
    assert b.params["args"]["learning_rate"] == 9e-5
    assert "param args.learning_rate: 3e-5 → 9e-5" in second, second
    shown = run_cli("diff", a.run_id, b.run_id, cwd=project_dir).stdout
    assert "args.learning_rate" in shown, shown


def test_a_script_run_with_run_i_reads_the_notebook_s_names(project_dir, kernel):
    """``%run -i prep.py``, whose code reads ``factor`` from the notebook: factor was
    recorded nowhere (only ``prep.py`` as an input), so changing it changed the result
    with no parameter to say why. An edited script is read again; a plain ``%run``
    (a namespace of its own) reads nothing of the notebook's."""
    (project_dir / "prep.py").write_text("scale = factor * 2\n")
    (project_dir / "alone.py").write_text("factor = 1\nlonely = factor\n")
    kernel.ok("factor = 5\nshift = 1", cell_id="config")
    cell = "%%track prep\n%run -i prep.py\n%run alone.py\nres = scale + 1"
    first = kernel.ok(cell, cell_id="prep").text
    kernel.ok("factor = 6", cell_id="config")
    (project_dir / "prep.py").write_text("scale = factor * 2 + shift\n")
    second = kernel.ok(cell, cell_id="prep").text
    a, b = _cell_runs(_settle(project_dir), "prep")
    assert a.params == {"factor": 5} and b.params == {"factor": 6, "shift": 1}
    assert "factor=5" in first and "param factor: 5 → 6" in second, second
    assert {d.path for d in b.data} == {"prep.py", "alone.py"}


def test_a_value_made_from_a_setting_of_its_own_cell_is_stale_when_it_changes(project_dir, kernel):
    """``LR = 0.1`` and ``step_p = partial(step, lr=LR)`` in one cell, then ``LR = 0.5``
    in a scratch cell: the tracked cell still ran with 0.1, and the record had no LR and
    no warning (a name was made only from the names the cell found, not from those it
    made). Now LR is the parameter behind step_p, and its change a stale input."""
    kernel.ok(
        "import functools\nLR = 0.1\ndef step(w, lr):\n    return w - lr\n"
        "step_p = functools.partial(step, lr=LR)",
        cell_id="setup",
    )
    first = kernel.ok("%%track fit\nw = step_p(1.0)", cell_id="fit").text
    kernel.ok("LR = 0.5", cell_id="scratch")
    second = kernel.ok("%%track fit\nw = step_p(1.0)", cell_id="fit").text
    a, b = _cell_runs(_settle(project_dir), "fit")
    assert a.params == {"LR": 0.1} and "LR=0.1" in first
    assert (
        "stale input: step_p was made by In[" in second and "from LR, which was changed" in second
    )
    assert [i.name for i in b.named_inputs if i.stale] == ["step_p"]


def test_the_parameters_a_closure_was_made_from_are_the_reading_run_s(project_dir, kernel):
    """``objective = make_objective(alpha)`` in an untracked cell, then a tracked cell
    minimising ``objective``: the function holds alpha in its closure, and the record had
    no parameter at all, so alpha changed and the cell re-run moved the optimum silently."""
    kernel.ok(
        "def make_objective(a):\n    def objective(w):\n        return (w - a) ** 2\n"
        "    return objective\nalpha = 2.0",
        cell_id="defs",
    )
    kernel.ok("objective = make_objective(alpha)", cell_id="build")
    cell = "%%track opt\nbest = min(range(5), key=objective)"
    first = kernel.ok(cell, cell_id="opt").text
    kernel.ok("alpha = 3.0", cell_id="defs2")
    # alpha changed, objective not made again: it still holds 2.0, and the cell says so
    behind = kernel.ok(cell, cell_id="opt").text
    kernel.ok("objective = make_objective(alpha)", cell_id="build")
    second = kernel.ok(cell, cell_id="opt").text
    a, stale, b = _cell_runs(_settle(project_dir), "opt")
    assert (a.params, b.params) == ({"alpha": 2.0}, {"alpha": 3.0})
    assert "alpha=2" in first and "alpha=3 (upstream)" in second, second
    assert "stale input: objective was made by In[" in behind and "from alpha" in behind, behind
    assert [i.name for i in stale.named_inputs if i.stale] == ["objective"]
    assert stale.params == {"objective": {"a": 2.0}}  # what it still held: the value used
    assert "stale" not in second


def test_the_settings_a_closure_holds_are_a_parameter_when_nothing_behind_explains_them(
    project_dir, kernel
):
    """``objective = make_objective(2.0)``: the literal is in no name, so the walk behind
    the closure finds no parameter, and changing it to 3.0 moved the optimum with
    nothing in the record to say why (the seventh trial's finding)."""
    kernel.ok(
        "import numpy as np\n"
        "def make_objective(a, data):\n    def objective(w):\n"
        "        return (w - a) ** 2 + len(data)\n    return objective",
        cell_id="defs",
    )
    cell = "%%track opt\nbest = min(range(5), key=objective)"
    kernel.ok("objective = make_objective(2.0, np.zeros(3))", cell_id="build")
    first = kernel.ok(cell, cell_id="opt").text
    kernel.ok("objective = make_objective(3.0, np.zeros(3))", cell_id="build")
    second = kernel.ok(cell, cell_id="opt").text
    a, b = _cell_runs(_settle(project_dir), "opt")
    # The array it holds is no setting; the number is, under the closure's name
    assert (a.params, b.params) == ({"objective": {"a": 2.0}}, {"objective": {"a": 3.0}})
    assert "objective={'a': 2.0}" in first and "param objective.a: 2 → 3" in second, second


def test_a_config_the_cell_changes_in_place_is_recorded_as_the_cell_left_it(project_dir, kernel):
    """``params = {'lr': 0.1, ...}`` upstream, ``params['lr'] = 0.05`` in the tracked cell
    before training: the record said lr 0.1, the model trained with 0.05. Likewise an
    attribute set on an ``argparse``-style namespace and a ``dict.update``; but a number
    the cell decays (``lr *= 0.5``) and a list a loop appends to are recorded as read."""
    kernel.ok(
        "from types import SimpleNamespace\nparams = {'lr': 0.1, 'depth': 3}\n"
        "args = SimpleNamespace(lr=0.1, epochs=2)\ncfg = {'depth': 3}\nseed = 0\nlr = 0.1\n"
        "history = []",
        cell_id="config",
    )
    out = kernel.ok(
        "%%track fit\nparams['lr'] = 0.05\nargs.lr = 0.3\ncfg.update(depth=9)\n"
        "lr *= 0.5\nfor e in range(2):\n    history.append(e)\n"
        "score = params['lr'] * args.lr * cfg['depth'] + seed + lr",
        cell_id="fit",
    ).text
    run = _settle(project_dir).get_run("last")
    assert run.params == {
        "params": {"lr": 0.05, "depth": 3},
        "args": {"lr": 0.3, "epochs": 2},
        "cfg": {"depth": 9},
        "seed": 0,
        "lr": 0.1,
        "history": [],
    }  # (`lr *= 0.5` makes a new number, a loop's appends a result: the value read)
    assert run.param_sources["seed"] == run.param_sources["lr"] == "upstream"
    assert "param params changed by the cell: {'lr': 0.1, 'depth': 3} → {'lr': 0.05" in out, out
