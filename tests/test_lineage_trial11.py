"""Notebook shapes of the eleventh trial, in real kernels: what the record says.

Each test is a reproducer from the eleventh trial: a notebook pattern the earlier trials
did not try, and what a careful data scientist says the run must record.
"""

from __future__ import annotations

from nbtrack.models import Run
from test_lineage import _cell_runs
from test_magics import _settle


def _tracked_once(project_dir, kernel, files: dict[str, str], setup: str, cell: str) -> Run:
    """``files`` written into the project, ``setup`` run, then the tracked ``cell``
    (``%%track NAME ...``): that cell's one run, once stored."""
    for name, text in files.items():
        (project_dir / name).write_text(text)
    kernel.ok(setup)
    kernel.ok(cell)
    (run,) = _cell_runs(_settle(project_dir), cell.split()[1])
    return run


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


def test_a_config_the_cell_loads_from_a_file_is_a_parameter(project_dir, kernel):
    """Found by the trial: ``with open("params.yaml") as f: cfg = yaml.safe_load(f)`` in
    the tracked cell (DVC's ``params.yaml``, a ``config.json``) recorded the file and no
    parameter: ``nbtrack ls`` had no ``lr`` column, and a changed learning rate read only
    "params.yaml changed". A value a config loader (``yaml``, ``json``, ``tomllib``)
    gives is a parameter as the cell left it; data loaded that way (a long list) is not."""
    (project_dir / "params.yaml").write_text("train:\n  lr: 0.1\n  depth: 3\n")
    (project_dir / "meta.json").write_text('{"seed": 7}')
    (project_dir / "rows.json").write_text(str(list(range(500))))
    kernel.ok("import json, yaml\nfrom pathlib import Path")
    cell = (
        "%%track load -m s\nwith open('params.yaml') as f:\n    cfg = yaml.safe_load(f)\n"
        "meta = json.loads(Path('meta.json').read_text())\nrows = json.load(open('rows.json'))\n"
        "s = cfg['train']['lr'] * len(rows)"
    )
    kernel.ok(cell)
    (project_dir / "params.yaml").write_text("train:\n  lr: 0.2\n  depth: 3\n")
    shown = kernel.ok(cell)
    assert "param cfg.train.lr: 0.1 → 0.2" in shown.text
    first, _ = _cell_runs(_settle(project_dir), "load")
    assert first.params == {"cfg": {"train": {"lr": 0.1, "depth": 3}}, "meta": {"seed": 7}}
    assert first.param_sources == {"cfg": "auto", "meta": "auto"}
    assert {d.path for d in first.data} == {"params.yaml", "meta.json", "rows.json"}


def test_an_object_of_a_project_modules_class_is_a_read_of_its_file(project_dir, kernel):
    """Found by the trial: ``from models import Net`` and ``net = Net(0.1)`` in one cell,
    ``%%track`` calling ``net.fit()``: the code that ran, ``models.py``, was in no record."""
    models = "class Net:\n    def __init__(self, lr):\n        self.lr = lr\n"
    models += "    def fit(self):\n        return self.lr * 2\n"
    setup = "from models import Net\nnet = Net(0.1)"
    run = _tracked_once(
        project_dir, kernel, {"models.py": models}, setup, "%%track inst\nnet.fit()"
    )
    assert [(d.path, d.role) for d in run.data] == [("models.py", "input")]


def test_a_name_a_run_line_expands_is_read(project_dir, kernel):
    """Found by the trial: ``%run train.py --lr {lr}`` (IPython fills ``{lr}`` in from the
    notebook, as in ``!python train.py --lr {lr}``, which did record it) trained the
    script with 0.3 and the run recorded no parameter."""
    script = "import argparse\np = argparse.ArgumentParser()\np.add_argument('--lr', type=float)\n"
    script += "open('out.txt', 'w').write(str(p.parse_args().lr))\n"
    cell = "%%track r1\n%run train.py --lr {lr}"
    run = _tracked_once(project_dir, kernel, {"train.py": script}, "lr = 0.3", cell)
    assert (project_dir / "out.txt").read_text() == "0.3"
    assert run.params == {"lr": 0.3}
    assert {(d.path, d.role) for d in run.data} == {("train.py", "input"), ("out.txt", "output")}


def test_a_named_tuple_config_is_recorded_by_its_field_names(project_dir, kernel):
    """Found by the trial: ``class Cfg(NamedTuple): lr: float = 0.1`` and ``cfg =
    Cfg(lr=0.2)`` read by a tracked cell was recorded as ``cfg=[0.2, 3]``, its names lost
    (no ``cfg.lr`` column, a diff of positions); one made in the tracked cell was not
    recorded at all. A named tuple is a config object, as a dataclass instance is."""
    setup = (
        "from typing import NamedTuple\nfrom collections import namedtuple\n"
        "class Cfg(NamedTuple):\n    lr: float = 0.1\n    epochs: int = 3\n"
        "cfg = Cfg(lr=0.2)\nHP = namedtuple('HP', 'depth leaves')"
    )
    cell = "%%track nt -m s\nhp = HP(4, 31)\ns = cfg.lr * cfg.epochs * hp.depth"
    run = _tracked_once(project_dir, kernel, {}, setup, cell)
    assert run.params == {"cfg": {"lr": 0.2, "epochs": 3}, "hp": {"depth": 4, "leaves": 31}}
    assert run.param_sources == {"cfg": "upstream", "hp": "auto"}


def test_a_config_object_built_from_a_loaded_file_is_a_parameter(project_dir, kernel):
    """Found by the trial: ``cfg = TrainConfig(**yaml.safe_load(f))`` (a dataclass filled
    from ``params.yaml``) recorded the file and no parameter, as a bare loaded dict did."""
    setup = "import yaml\nfrom dataclasses import dataclass\n"
    setup += "@dataclass\nclass TrainConfig:\n    lr: float = 0.1\n    epochs: int = 3"
    cell = "%%track dc\nwith open('params.yaml') as f:\n    cfg = TrainConfig(**yaml.safe_load(f))"
    run = _tracked_once(project_dir, kernel, {"params.yaml": "lr: 0.05\n"}, setup, cell)
    assert run.params == {"cfg": {"lr": 0.05, "epochs": 3}}
    assert [(d.path, d.role) for d in run.data] == [("params.yaml", "input")]
