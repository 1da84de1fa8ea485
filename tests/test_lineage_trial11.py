"""Notebook shapes of the eleventh trial, in real kernels: what the record says.

Each test is a reproducer from the eleventh trial: a notebook pattern the earlier trials
did not try, and what a careful data scientist says the run must record.
"""

from __future__ import annotations

from test_lineage import _cell_runs
from test_magics import _settle


def test_a_function_imported_from_a_project_module_is_a_read_of_its_file(project_dir, kernel):
    """Found by the trial: ``from utils import train`` in one cell and ``%%track`` calling
    ``train(3)``: the run recorded no trace of ``utils.py``, so editing the function and
    reloading it changed the metric with nothing in the record to say why (``import
    utils`` then ``utils.train(3)`` did record the file)."""
    (project_dir / "utils.py").write_text("def train(x):\n    return x * 2\n")
    kernel.ok("import importlib, utils\nfrom utils import train")
    kernel.ok("%%track fu -m s\ns = train(3)")
    (project_dir / "utils.py").write_text("def train(x):\n    return x * 3\n")
    kernel.ok("importlib.reload(utils)\nfrom utils import train")
    shown = kernel.ok("%%track fu -m s\ns = train(3)")
    assert "utils.py" in shown.text
    first, second = _cell_runs(_settle(project_dir), "fu")
    assert [(d.path, d.role) for d in first.data] == [("utils.py", "input")]
    assert [(d.path, d.role) for d in second.data] == [("utils.py", "input")]
    assert first.data[0].hash != second.data[0].hash
    assert second.metrics["s"] == 9


def test_the_settings_a_partial_holds_are_a_parameter(project_dir, kernel):
    """Found by the trial: ``step_fast = functools.partial(step, lr=0.9, decay=0.5)`` in
    one cell and ``%%track`` calling ``step_fast(2)`` recorded no parameter, so changing
    the partial's ``lr`` showed only the metric move. Its settings are a dict parameter
    under its name, as a closure's are (``make_objective(2.0)``), positional ones by the
    name the function gives them; one made from a setting is that setting."""
    kernel.ok(
        "import functools, math\ndef step(x, lr, decay):\n    return x * lr * decay\n"
        "step_fast = functools.partial(step, lr=0.9, decay=0.5)\n"
        "power = functools.partial(math.pow, 3)\nLR = 0.1\nstep_lr = functools.partial(step, lr=LR)"
    )
    kernel.ok("%%track part -m s\ns = step_fast(2) + power(2)")
    kernel.ok("step_fast = functools.partial(step, lr=0.5, decay=0.5)")
    shown = kernel.ok("%%track part -m s\ns = step_fast(2) + power(2)")
    assert "param step_fast.lr: 0.9 → 0.5" in shown.text
    kernel.ok("%%track named -m s\ns = step_lr(2, decay=1)")
    client = _settle(project_dir)
    first, _ = _cell_runs(client, "part")
    assert first.params == {"step_fast": {"lr": 0.9, "decay": 0.5}, "power": {"x": 3}}
    (named,) = _cell_runs(client, "named")
    assert named.params == {"LR": 0.1}


def test_an_enum_class_is_no_parameter_and_its_member_is(project_dir, kernel):
    """Found by the trial: ``class Mode(enum.Enum)`` with ``mode = Mode.FAST``, and a
    tracked cell testing ``mode is Mode.FAST``: the run recorded a parameter ``Mode =
    {'FAST': 'Mode.FAST', 'SLOW': 'Mode.SLOW'}`` beside ``mode``, a list of choices
    taken for a setting. The member chosen is the parameter."""
    kernel.ok("import enum\nclass Mode(enum.Enum):\n    FAST = 'fast'\n    SLOW = 'slow'")
    kernel.ok("mode = Mode.FAST")
    kernel.ok("%%track en -m s\ns = 1 if mode is Mode.FAST else 0")
    (run,) = _cell_runs(_settle(project_dir), "en")
    assert run.params == {"mode": "Mode.FAST"}
