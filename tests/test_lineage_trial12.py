"""Notebook shapes of the twelfth trial, in real kernels: what the record says.

Each test is a reproducer from the twelfth trial: a notebook pattern the earlier trials
did not try, and what a careful data scientist says the run must record.
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


def _twice(project_dir, kernel, cell: str, between: str) -> tuple[str, list[Run]]:
    """The tracked ``cell`` (``%%track NAME ...``) run, ``between`` run, the cell run
    again: what the second run showed under the cell, and the cell's runs, once stored."""
    kernel.ok(cell)
    kernel.ok(between)
    shown = kernel.ok(cell).text
    return shown, _cell_runs(_settle(project_dir), cell.split()[1])


def test_a_metric_the_cell_takes_from_an_earlier_result_is_recorded_every_run(project_dir, kernel):
    """Found by the trial: ``acc = results["acc"]`` (a score an untracked evaluation cell
    computed) under ``%%track report -m acc``, run twice: the second run recorded no
    metric and said "-m acc: not recorded: the cell did not change it". The cell did
    assign it, to the very float object it held before (as ``args.lr``,
    ``search.best_score_`` or ``max(scores)`` give back). Only an assignment that may
    not have run (``if False: acc = 0.1``) is judged by the object."""
    kernel.ok("results = {'acc': 0.93}\nscores = [0.8, 0.9]")
    cell = "%%track report -m acc best\nacc = results['acc']\nbest = max(scores)"
    kernel.ok(cell)
    shown = kernel.ok(cell)
    assert "not recorded" not in shown.text
    kernel.ok("%%track branch -m acc\nif False:\n    acc = 0.1")
    client = _settle(project_dir)
    assert [
        {k: v for k, v in r.metrics.items() if not k.startswith("system/")}
        for r in _cell_runs(client, "report")
    ] == [{"acc": 0.93, "best": 0.9}] * 2
    (branch,) = _cell_runs(client, "branch")
    assert "acc" not in branch.metrics


def test_an_attrs_config_is_recorded_by_its_fields(project_dir, kernel):
    """Found by the trial: ``@attrs.define class TrainCfg: lr: float = 0.1`` (attrs, the
    dataclasses before dataclasses) and ``cfg = TrainCfg(lr=0.3)`` read by a tracked cell
    recorded no parameter, only an opaque named input ``cfg (TrainCfg)``; one made in the
    cell was not recorded at all. An attrs instance is a config object as a dataclass
    instance is; its class holds defaults, not settings."""
    kernel.ok(
        "import attr, attrs\n@attrs.define\nclass TrainCfg:\n    lr: float = 0.1\n"
        "    epochs: int = 2\n@attr.s(auto_attribs=True)\nclass Old:\n    depth: int = 3\n"
        "cfg = TrainCfg(lr=0.3)"
    )
    cell = "%%track at -m s\nold = Old(depth=5)\ns = cfg.lr * cfg.epochs * old.depth"
    shown, (first, _) = _twice(project_dir, kernel, cell, "cfg = TrainCfg(lr=0.4)")
    assert "param cfg.lr: 0.3 → 0.4" in shown
    assert first.params == {"cfg": {"lr": 0.3, "epochs": 2}, "old": {"depth": 5}}
    assert first.param_sources == {"cfg": "upstream", "old": "auto"}
    kernel.ok("%%track cls -m s\ns = TrainCfg().lr")
    (cls,) = _cell_runs(_settle(project_dir), "cls")
    assert cls.params == {}


def test_a_config_made_in_the_cell_without_arguments_is_a_parameter(project_dir, kernel):
    """Found by the trial: ``cfg = TrainConfig()`` (a dataclass's defaults) and ``args =
    parser.parse_args()`` (options from ``sys.argv``, as a script pasted into a notebook
    keeps them) in the tracked cell recorded no parameter, where ``TrainConfig(lr=0.2)``
    and ``parse_args(["--lr", "0.2"])`` did; nor did ``args, rest =
    parser.parse_known_args()``, Jupyter's way round the kernel's own ``-f`` option.
    What such a call makes is no parameter unless it is a config (``t0 = time.time()``),
    declared as one: ``meter = AverageMeter()``, a notebook object holding state, is none."""
    kernel.ok(
        "import argparse, sys, time\nfrom dataclasses import dataclass\n@dataclass\n"
        "class TrainConfig:\n    lr: float = 0.1\n    epochs: int = 3\n"
        "parser = argparse.ArgumentParser()\nparser.add_argument('--depth', type=int, default=4)\n"
        "sys.argv = ['train.py', '--depth', '6']\nclass AverageMeter:\n    def __init__(self):\n"
        "        self.sum, self.count = 0.0, 0\n    def update(self, v):\n"
        "        self.sum += v\n        self.count += 1"
    )
    kernel.ok(
        "%%track zero -m s\ncfg = TrainConfig()\nargs = parser.parse_args()\n"
        "known, rest = parser.parse_known_args()\nt0 = time.time()\nmeter = AverageMeter()\n"
        "meter.update(0.5)\ns = cfg.lr * args.depth"
    )
    (run,) = _cell_runs(_settle(project_dir), "zero")
    options = {"depth": 6}
    assert run.params == {"cfg": {"lr": 0.1, "epochs": 3}, "args": options, "known": options}


def test_a_section_of_a_loaded_config_is_a_parameter(project_dir, kernel):
    """Found by the trial: DVC's own ``params = yaml.safe_load(open("params.yaml"))["train"]``
    (and ``json.load(f)["model"]``) in the tracked cell recorded the file and no
    parameter, where the whole ``yaml.safe_load(f)`` did: ``ls`` had no ``lr`` column, and
    a changed rate read "params.yaml changed". A section taken by a literal key is the
    config the cell uses."""
    (project_dir / "params.yaml").write_text("train:\n  lr: 0.1\n  depth: 3\n")
    (project_dir / "c.json").write_text('{"model": {"layers": {"n": 4}}}')
    kernel.ok("import json, yaml")
    cell = (
        "%%track sec -m s\nparams = yaml.safe_load(open('params.yaml'))['train']\n"
        "with open('c.json') as f:\n    layers = json.load(f)['model'].get('layers')\n"
        "s = params['lr'] * layers['n']"
    )
    change = "open('params.yaml', 'w').write('train:\\n  lr: 0.2\\n  depth: 3\\n')"
    shown, (first, _) = _twice(project_dir, kernel, cell, change)
    assert "param params.lr: 0.1 → 0.2" in shown
    assert first.params == {"params": {"lr": 0.1, "depth": 3}, "layers": {"n": 4}}


def test_a_value_that_cannot_be_fingerprinted_made_again_reads_changed(project_dir, kernel):
    """Found by the trial: a model holding a lambda (or an ipywidgets slider, or one too
    big to pickle within the budget) is not fingerprinted. Made again by another
    untracked cell's run (``model = Scaler(0.9)``), it read the same in the next run's
    summary and in ``nbtrack diff``: "metric s: 1 → 1.8" with nothing to say why. With no
    fingerprint, only the same making (the same cell execution in the same kernel) is
    proof of the same value."""
    kernel.ok(
        "class Scaler:\n    def __init__(self, w):\n        self.w = w\n"
        "        self.act = lambda x: x * self.w\nmodel = Scaler(0.5)"
    )
    shown, (first, second) = _twice(
        project_dir, kernel, "%%track ev -m s\ns = model.act(2)", "model = Scaler(0.9)"
    )
    assert first.named_inputs[0].fingerprint is None
    assert "read model: changed" in shown
    kernel.ok("%%track ev -m s\ns = model.act(2)")
    shown = kernel.ok("%%track ev -m s\ns = model.act(2)").text
    assert "same as the previous run" in shown


def test_a_date_or_path_written_as_a_call_in_the_cell_is_a_parameter(project_dir, kernel):
    """Found by the trial: a forecasting cell's own ``train_end = pd.Timestamp("2023-12-31")``,
    ``start = date(2024, 1, 1)``, ``data_dir = Path("data")``, ``rate = Decimal("0.05")``
    or ``mom = np.float32(0.9)`` recorded nothing, though the same values bound upstream
    are parameters: a value written as a constructor of literals is a literal. A call
    that computes (``round(2.5)``) or reads the clock (``datetime.now()``) is not."""
    setup = "import numpy as np, pandas as pd\nfrom datetime import date, datetime\n"
    setup += "from pathlib import Path\nfrom decimal import Decimal"
    run = _one_run(
        project_dir,
        kernel,
        setup,
        "%%track win\ntrain_end = pd.Timestamp('2023-12-31')\nstart = date(2024, 1, 1)\n"
        "data_dir = Path('data')\nrate = Decimal('0.05')\nmom = np.float32(0.9)\n"
        "n = round(2.5)\nnow = datetime.now()\ntoday = date.today()",
    )
    window = {"train_end": "2023-12-31T00:00:00", "start": "2024-01-01"}
    assert run.params == {**window, "data_dir": "data", "rate": 0.05, "mom": 0.9}


def test_a_torchscript_model_the_cell_loads_is_an_input(project_dir, kernel):
    """Found by the trial: ``torch.jit.load("net.ts")`` in an evaluation cell recorded no
    input (TorchScript's C++ reads the file, past the audit hook), so a retrained model
    read "same as the previous run" beside a moved metric; ``torch.load`` was seen."""
    kernel.ok("import torch\ntorch.jit.script(torch.nn.Linear(3, 1)).save('net.ts')")
    run = _one_run(
        project_dir, kernel, "x = torch.ones(1, 3)", "%%track ev\ny = torch.jit.load('net.ts')(x)"
    )
    assert [(d.path, d.role) for d in run.data] == [("net.ts", "input")]


def test_a_shell_line_after_cd_names_the_file_in_that_folder(project_dir, kernel):
    """Found by the trial: ``%cd data`` then ``!cp x.csv z.csv`` in the tracked cell (a
    Colab habit) recorded the project's own ``x.csv`` as the input, another file with
    other bytes, where ``data/x.csv`` was copied. A shell line's words are looked up
    where the kernel is when it runs; after a ``cd`` nbtrack cannot follow
    (``!cd $d && cat x``), they are not guessed at."""
    (project_dir / "data").mkdir()
    (project_dir / "data" / "x.csv").write_text("a\n1\n2\n")
    (project_dir / "x.csv").write_text("a\n9\n")
    cell = "%%track cd\n%cd data\n!cp x.csv z.csv\n%cd ..\n!cd $HOME && cat x.csv > /dev/null"
    run = _one_run(project_dir, kernel, "import os", cell)
    assert {(d.path, d.role) for d in run.data} == {
        ("data/x.csv", "input"),
        ("data/z.csv", "output"),
    }


def test_names_a_run_script_binds_are_not_read_from_the_notebook(project_dir, kernel):
    """Found by the trial: ``%run prep.py`` (a plain ``%run``: the script's names are
    copied into the notebook's after it runs) at the top of the tracked cell, then
    ``n = len(rows) * factor``: the run recorded ``factor=3 (upstream)``, the value an
    earlier ``%run`` had left, while the script now set 5. The names a script binds are
    bound by the cell, not read; the script itself is the input that says what changed."""
    (project_dir / "prep.py").write_text("factor = 3\nrows = [1, 2]\n")
    cell = "%%track rs -m n\n%run prep.py\nn = len(rows) * factor"
    change = "open('prep.py', 'w').write('factor = 5\\nrows = [1, 2]\\n')"
    shown, (_, second) = _twice(project_dir, kernel, cell, change)
    assert second.metrics["n"] == 10
    assert "factor" not in second.params and not second.named_inputs
    assert "input prep.py: changed" in shown


def test_a_script_an_f_string_command_runs_is_an_input(project_dir, kernel):
    """Found by the trial: ``os.system(f"python train.py --lr {lr}")`` and
    ``subprocess.run(f"...", shell=True)`` recorded ``lr`` and the file the script wrote,
    not ``train.py``, the code that ran (the same command as a list, or as ``!python
    train.py --lr {lr}``, did). The literal words of an f-string name files as a plain
    string's do; the filled-in parts are not guessed at."""
    (project_dir / "train.py").write_text("import sys\nopen('out.txt', 'w').write(sys.argv[-1])\n")
    cell = "%%track osf\nos.system(f'{sys.executable} train.py --lr {lr}')"
    run = _one_run(project_dir, kernel, "import os, sys\nlr = 0.3", cell)
    assert {(d.path, d.role) for d in run.data} == {("train.py", "input"), ("out.txt", "output")}


def test_a_dmatrix_built_from_a_file_is_an_input(project_dir, kernel):
    """Found by the trial: XGBoost's own tutorial ``xgb.DMatrix("train.svm?format=libsvm")``
    recorded no input: XGBoost's C++ reads the file, and its ``?format=`` suffix is no
    file name."""
    setup = (
        "import xgboost as xgb\nopen('train.svm', 'w').write('1 0:0.5 1:0.2\\n0 0:0.1 1:0.9\\n')"
    )
    run = _one_run(
        project_dir, kernel, setup, "%%track dm\nd = xgb.DMatrix('train.svm?format=libsvm')"
    )
    assert [(d.path, d.role) for d in run.data] == [("train.svm", "input")]
