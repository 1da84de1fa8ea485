"""Notebook shapes of the thirteenth trial, in real kernels: what the record says.

Each test is a reproducer from the thirteenth trial: a notebook pattern the earlier
trials did not try, and what a careful data scientist says the run must record.
"""

from __future__ import annotations

from nbtrack.models import Run
from test_lineage import _cell_runs
from test_magics import _settle


def _one_run(project_dir, kernel, setup: str, cell: str) -> Run:
    """``setup`` run, then the tracked ``cell`` (``%%track NAME ...``): its one run."""
    kernel.ok(setup)
    kernel.ok(cell)
    (run,) = _cell_runs(_settle(project_dir), cell.split()[1])
    return run


def test_a_library_function_the_cell_calls_is_no_parameter(project_dir, kernel):
    """Found by the trial: ``classification_report(y, pred, output_dict=True)`` and
    ``accuracy_score(y, pred)`` in an evaluation cell recorded two parameters,
    ``accuracy_score={'parameter_constraints': {...}, ...}`` and
    ``classification_report={'prefer_skip_nested_validation': True}``: scikit-learn
    wraps every metric in a closure (``validate_params``), and a closure's values were
    taken for settings the notebook made it with. A library's own closure holds the
    library's settings; one the notebook made (``make_objective(2.0)``) still counts."""
    setup = (
        "from sklearn.metrics import accuracy_score, classification_report\n"
        "def make_objective(a):\n    return lambda x: a * x\nobjective = make_objective(2.0)"
    )
    cell = (
        "%%track ev -m acc\ny, pred = [0, 1, 1], [0, 1, 0]\nacc = accuracy_score(y, pred)\n"
        "rep = classification_report(y, pred, output_dict=True)\ns = objective(acc)"
    )
    run = _one_run(project_dir, kernel, setup, cell)
    assert run.params == {"objective": {"a": 2.0}, "y": [0, 1, 1], "pred": [0, 1, 0]}


def test_a_config_a_loop_of_the_cell_overrides_is_recorded_as_the_cell_left_it(project_dir, kernel):
    """Found by the trial: ``for k, v in overrides.items(): setattr(cfg, k, v)`` (a
    config object an earlier cell made, overridden key by key before training) recorded
    ``cfg={'lr': 0.1, ...} (upstream)`` and no warning, while the cell trained with 0.5:
    a container a loop changes was taken for a loop's result (``history.append(loss)``).
    Setting an attribute is setting the config, in a loop as outside one; a loop that
    appends to a list, or decays a rate (``cfg.lr *= 0.9``), still keeps the value read."""
    kernel.ok(
        "from dataclasses import dataclass\n@dataclass\nclass Cfg:\n    lr: float = 0.1\n"
        "    depth: int = 3\ncfg, opt = Cfg(), Cfg()\nsched = Cfg()\n"
        "overrides = {'lr': 0.5}\nhistory = [0.0]"
    )
    shown = kernel.ok(
        "%%track ov -m s\nfor k, v in overrides.items():\n    setattr(cfg, k, v)\n"
        "for k in ['depth']:\n    opt.depth = 4\nfor e in range(2):\n    sched.lr *= 0.5\n"
        "    history.append(e)\ns = cfg.lr * opt.depth"
    ).text
    (run,) = _cell_runs(_settle(project_dir), "ov")
    assert run.params["cfg"] == {"lr": 0.5, "depth": 3}
    assert run.params["opt"] == {"lr": 0.1, "depth": 4}
    assert run.params["sched"] == {"lr": 0.1, "depth": 3}
    assert run.params["history"] == [0.0]
    assert "param cfg changed by the cell" in shown


def test_a_model_the_cell_trains_again_reads_changed(project_dir, kernel):
    """Found by the trial: the PyTorch tutorial's training cell (``pred = model(X)``,
    ``loss.backward()``, ``optimizer.step()``) run twice, with the model and optimizer
    from an earlier cell: the second run started from the weights the first left, yet its
    summary said only "read optimizer: changed", no word of ``model``: calling an object
    (``model(X)``, its ``__call__``) was not counted as a call that may change it, as
    ``model.forward(X)`` is, so its fingerprint of the first run was taken again."""
    kernel.ok(
        "import torch\ntorch.manual_seed(0)\nmodel = torch.nn.Linear(2, 1)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\nX = torch.ones(4, 2)"
    )
    cell = (
        "%%track fit -m loss\noptimizer.zero_grad()\nloss = model(X).pow(2).mean()\n"
        "loss.backward()\noptimizer.step()\nloss = loss.item()"
    )
    kernel.ok(cell)
    shown = kernel.ok(cell).text
    assert "read model: changed" in shown


def test_a_config_the_cell_loads_from_text_it_writes_is_a_parameter(project_dir, kernel):
    """Found by the trial: a config written inline, ``cfg = yaml.safe_load(\"\"\"lr: 0.1
    ...\"\"\")`` (as notebooks keep a YAML block beside the training code) and
    ``extra = json.loads('{"wd": 0.01}')``, recorded no parameter, where the same text
    loaded from a file did: a loader's call of a literal was judged as any call of
    literals (``round(2.5)``: no setting), and a text loader counted only a file's text."""
    run = _one_run(
        project_dir,
        kernel,
        "import json, yaml",
        "%%track inl -m s\ncfg = yaml.safe_load('''\nlr: 0.1\ndepth: 4\n''')\n"
        "extra = json.loads('{\"wd\": 0.01}')\ns = cfg['lr'] * extra['wd']",
    )
    assert run.params == {"cfg": {"lr": 0.1, "depth": 4}, "extra": {"wd": 0.01}}


def test_a_settings_class_the_cell_defines_is_a_parameter(project_dir, kernel):
    """Found by the trial: Kaggle's ``class CFG: seed = 42; lr = 1e-3`` written at the top
    of the training cell itself recorded nothing, where the same class defined in an
    earlier cell and read is the parameter ``CFG={'seed': 42, 'lr': 0.001}``: changing
    ``lr`` in the class left only the code and the metric to say so. A class holding
    only methods (a model), a dataclass (its defaults) and an Enum (its choices) are no
    settings, here as upstream."""
    run = _one_run(
        project_dir,
        kernel,
        "import enum\nfrom dataclasses import dataclass",
        "%%track kag -m s\nclass CFG:\n    seed = 42\n    lr = 1e-3\nclass Net:\n"
        "    def forward(self, x):\n        return x\n@dataclass\nclass TC:\n    lr: float = 0.3\n"
        "class Mode(enum.Enum):\n    FAST = 1\ns = Net().forward(CFG.lr) * TC.lr",
    )
    assert run.params == {"CFG": {"seed": 42, "lr": 0.001}}


def test_a_setting_chosen_between_two_literals_is_a_parameter(project_dir, kernel):
    """Found by the trial: ``epochs = 1 if DEBUG else 20`` and ``device = "cuda" if
    torch.cuda.is_available() else "cpu"`` (every Kaggle kernel's two lines) in the
    tracked cell recorded ``DEBUG`` and neither setting: a conditional expression was
    judged computed, so 20 edited to 30 left only the code to say so. A choice between
    two literals is a literal, with the value the cell took."""
    run = _one_run(
        project_dir,
        kernel,
        "DEBUG = False\nimport os",
        "%%track ch\nepochs = 1 if DEBUG else 20\ndevice = 'cuda' if os.environ.get('X') else 'cpu'\n"
        "n = len(device) if DEBUG else 3",
    )
    assert run.params == {"DEBUG": False, "epochs": 20, "device": "cpu"}


def test_a_literal_seed_an_earlier_cell_gave_is_a_parameter(project_dir, kernel):
    """Found by the trial: ``np.random.seed(42)`` and ``torch.manual_seed(0)`` in a setup
    cell (as nearly every tutorial writes them, with no ``SEED`` name), then a tracked
    cell drawing ``np.random.rand()``: the run recorded no parameter, and 42 edited to 43
    showed only the metric move. A seed named by a variable was a parameter
    (``SEED=7``); a literal one is now, by its call: ``np.random.seed=42``."""
    kernel.ok("import numpy as np, random\nnp.random.seed(42)\nrandom.seed(a=1)")
    cell = "%%track draw -m s\ns = float(np.random.rand()) + random.random()"
    kernel.ok(cell)
    kernel.ok("np.random.seed(43)")
    shown = kernel.ok(cell).text
    first, second = _cell_runs(_settle(project_dir), "draw")
    assert first.params == {"np.random.seed": 42, "random.seed": 1}
    assert second.params["np.random.seed"] == 43
    assert "param np.random.seed: 42 → 43" in shown


def test_a_file_the_cell_opens_to_read_and_write_is_its_input_too(project_dir, kernel):
    """Found by the trial: ``with open("data/x.csv", "r+") as f: body = f.read();
    f.write(...)`` (a file updated in place) recorded the file as an output only: the
    bytes it read, the version before, were no input. An open for reading and writing
    that keeps the file (``r+``, ``a+``) reads it; one that empties it (``w+``) does not."""
    (project_dir / "x.csv").write_text("a\n1\n")
    (project_dir / "log.txt").write_text("old\n")
    (project_dir / "w.txt").write_text("gone\n")
    run = _one_run(
        project_dir,
        kernel,
        "import os",
        "%%track rp\nwith open('x.csv', 'r+') as f:\n    body = f.read()\n    f.write('2\\n')\n"
        "with open('log.txt', 'a+') as f:\n    f.seek(0)\n    old = f.read()\n    f.write('new\\n')\n"
        "with open('w.txt', 'w+') as f:\n    f.write('x')",
    )
    assert sorted((d.path, d.role) for d in run.data) == [
        ("log.txt", "input"),
        ("log.txt", "output"),
        ("w.txt", "output"),
        ("x.csv", "input"),
        ("x.csv", "output"),
    ]
    (x_in,) = [d for d in run.data if d.path == "x.csv" and d.role == "input"]
    assert x_in.size == len("a\n1\n")


def test_a_seed_a_notebook_function_gave_is_a_parameter(project_dir, kernel):
    """Found by the trial: Kaggle's ``def seed_everything(seed): random.seed(seed);
    np.random.seed(seed); ...`` called in a setup cell, ``seed_everything(42)``, then a
    tracked cell drawing from numpy: no parameter, as for any seeding call not made
    through a module (``from random import seed; seed(1)`` too). Such a call seeds
    what its body seeds, unseen: every tracked cell after it records it."""
    kernel.ok(
        "import numpy as np, random\ndef seed_everything(seed):\n    random.seed(seed)\n"
        "    np.random.seed(seed)\nSEED = 7\nseed_everything(42)"
    )
    run = _one_run(project_dir, kernel, "pass", "%%track d -m s\ns = float(np.random.rand())")
    assert run.params == {"seed_everything": 42}
    kernel.ok("seed_everything(SEED)")
    kernel.ok("%%track e -m s\ns = float(np.random.rand())")
    (e,) = _cell_runs(_settle(project_dir), "e")
    assert e.params == {"SEED": 7}


def test_a_file_the_cell_moves_in_is_its_input(project_dir, kernel):
    """Found by the trial: ``shutil.move("inbox/batch.csv", "processed.csv")`` (a batch
    taken from an inbox) recorded ``processed.csv`` as an output only: the batch the run
    consumed, a file an earlier step made, was no input, where ``shutil.copy`` made it
    one (a move across file systems is a copy too). A file there before the cell that
    the cell renames is read: its version is taken before it moves. The cell's own
    temporary file renamed into place (``os.replace(tmp, path)``) stays an output only."""
    (project_dir / "inbox").mkdir()
    (project_dir / "inbox" / "batch.csv").write_text("a\n1\n2\n")
    run = _one_run(
        project_dir,
        kernel,
        "import os, shutil",
        "%%track mv\nshutil.move('inbox/batch.csv', 'processed.csv')\n"
        "open('t.tmp', 'w').write('x')\nos.replace('t.tmp', 'final.txt')",
    )
    assert sorted((d.path, d.role) for d in run.data) == [
        ("final.txt", "output"),
        ("inbox/batch.csv", "input"),
        ("processed.csv", "output"),
    ]
    (moved,) = [d for d in run.data if d.role == "input"]
    (made,) = [d for d in run.data if d.path == "processed.csv"]
    assert moved.hash == made.hash
