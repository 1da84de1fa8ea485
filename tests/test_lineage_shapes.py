"""Notebook shapes from tutorials and scripts, in real kernels: what the record says.

Each test is a reproducer from a new user's fourth trial (issue 15): a notebook shape
the earlier trials did not try, and what the record must say about it.
"""

from __future__ import annotations

from conftest import run_cli
from test_lineage import _cell_runs
from test_magics import _settle

HP_AND_BOX = """
import numpy as np

class HP:
    hidden = 64

    def __init__(self, dropout):
        self.dropout = dropout

    def describe(self):
        return "hp"

class Box:
    def __init__(self):
        self.X = np.zeros(3)

hp, box = HP(0.2), Box()
"""


def _train_twice(kernel, project_dir, setup: str, train: str, change: str):
    """``setup``, the tracked ``train`` cell, ``change``, ``train`` again: both runs
    read back, and the second summary."""
    kernel.ok(setup)
    kernel.ok(train)
    kernel.ok(change)
    second = kernel.ok(train)
    a, b = _cell_runs(_settle(project_dir), "train")
    return a, b, second.text


def test_config_objects_copied_from_scripts_are_parameters_and_their_change_shows(
    project_dir, kernel
):
    """Found by the trial: ``args = argparse.Namespace(...)`` / ``SimpleNamespace`` and a
    ``@dataclass`` config were opaque reads ("read args: changed"): the epochs and the seed
    the cell used were nowhere in the record."""
    setup = (
        "import argparse\nfrom dataclasses import dataclass\n"
        "args = argparse.Namespace(epochs=5, lr=0.1, name='run1')\n"
        "@dataclass\nclass Config:\n    seed: int = 0\n    layers: tuple = (64, 32)\n"
        "conf = Config(seed=7)"
    )
    train = "%%track train\nsteps = [args.lr * e for e in range(args.epochs)]\nrng = conf.seed"
    a, b, second = _train_twice(kernel, project_dir, setup, train, "args.epochs = 3")
    assert a.params == {
        "args": {"epochs": 5, "lr": 0.1, "name": "run1"},
        "conf": {"seed": 7, "layers": [64, 32]},
    }
    assert a.param_sources == {"args": "upstream", "conf": "upstream"}
    assert b.params["args"]["epochs"] == 3
    assert "param args.epochs: 5 → 3 (upstream)" in second and "read args" not in second
    shown = run_cli("diff", a.run_id, b.run_id, cwd=project_dir)
    assert shown.returncode == 0 and "param    args" in shown.stdout, shown.stdout


def stale_after_equal_rebind(kernel, cells: dict[str, str], use: str, change: str) -> list:
    """Cells ``cfg``, ``make``, ``cfg`` again (equal), the tracked ``use``; then ``cfg``
    bound to another value and ``use`` again: the two summaries."""
    for cell_id in ("cfg", "make", "cfg"):
        kernel.ok(cells[cell_id], cell_id=cell_id)
    seen = [kernel.ok(use, cell_id="use")]
    kernel.ok(change, cell_id="cfg")
    seen.append(kernel.ok(use, cell_id="use"))
    return seen


def test_a_config_object_cell_run_again_equal_makes_nothing_stale(project_dir, kernel):
    """As for dicts and lists: ``args = SimpleNamespace(...)`` run again with the same
    fields is no change, one with another value is."""
    cells = {
        "cfg": "from types import SimpleNamespace\nargs = SimpleNamespace(lr=0.1, epochs=5)",
        "make": "sched = [args.lr] * args.epochs",
    }
    seen = stale_after_equal_rebind(
        kernel, cells, "%%track use\nn = len(sched)", "args = SimpleNamespace(lr=0.1, epochs=3)"
    )
    assert ["stale input" in r.text for r in seen] == [False, True]
    assert "sched was made by In[3] from args, which was changed since" in seen[1].text


def test_a_kaggle_cfg_class_is_a_parameter_and_its_change_is_not_the_same_run(project_dir, kernel):
    """Found by the trial: ``class CFG: lr = 1e-3`` read as ``CFG.lr`` recorded nothing,
    and after ``CFG.lr = 1e-2`` the summary said "same as the previous run"."""
    setup = (
        "class CFG:\n    seed = 42\n    lr = 1e-3\n    epochs = 3\n"
        "    def describe(self):\n        return 'cfg'"
    )
    train = "%%track train\nhist = [CFG.lr * i for i in range(CFG.epochs)]"
    a, b, second = _train_twice(kernel, project_dir, setup, train, "CFG.lr = 1e-2")
    assert a.params == {"CFG": {"seed": 42, "lr": 1e-3, "epochs": 3}}
    assert b.params["CFG"]["lr"] == 1e-2
    assert "param CFG.lr: 0.001 → 0.01 (upstream)" in second


def test_a_dict_parameter_changed_past_its_first_characters_says_which_key(project_dir, kernel):
    """Found by the trial: the summary cut a changed ``cfg`` dict to 60 characters, so a
    change of its last key read ``param cfg: {'seed': 42, … → {'seed': 42, …``."""
    setup = (
        "cfg = {'seed': 42, 'model_name': 'resnet34', 'epochs': 10, 'batch_size': 64,"
        " 'opt': {'name': 'adamw', 'wd': 0.01}}"
    )
    train = "%%track train\nsteps = cfg['epochs'] * cfg['batch_size'] * cfg['opt']['wd']"
    change = "cfg['opt'] = {'name': 'adamw', 'wd': 0.05, 'eps': 1e-8}"
    a, b, second = _train_twice(kernel, project_dir, setup, train, change)
    assert b.params["cfg"]["opt"]["wd"] == 0.05
    assert "param cfg.opt.wd: 0.01 → 0.05 (upstream)" in second
    assert "param cfg.opt.eps: — → 1e-8 (upstream)" in second
    assert "param cfg: {" not in second
    # nbtrack diff, which cuts a value to the terminal's width, names the keys too
    shown = run_cli("diff", a.run_id, b.run_id, cwd=project_dir).stdout
    rows = [line.split() for line in shown.splitlines()]
    assert ["cfg.opt.wd", "changed", "0.01", "0.05", "0.04"] in rows, shown
    assert ["cfg.opt.eps", "added", "1e-8"] in rows, shown


def test_an_object_holding_hyperparameters_as_attributes_is_a_parameter(project_dir, kernel):
    """Found by the trial: ``hp = HP()`` read as ``hp.hidden`` was "read hp (HP)" by a
    fingerprint of its own attributes only, so ``HP.hidden = 128`` changed nothing in the
    record. An object of a notebook class whose class and own attributes are plain is
    recorded by them; one holding data is a named input as before."""
    a, _, second = _train_twice(
        kernel, project_dir, HP_AND_BOX, "%%track train\nunits = hp.hidden * hp.dropout",
        "HP.hidden = 128",
    )  # fmt: skip
    assert a.params == {"hp": {"hidden": 64, "dropout": 0.2}}
    assert "param hp.hidden: 64 → 128 (upstream)" in second
    kernel.ok("%%track box\ntotal = box.X.sum()")
    box = _cell_runs(_settle(project_dir), "box")[0]
    assert not box.params and [i.name for i in box.named_inputs] == ["box"]


def test_data_made_again_equal_by_another_run_is_read_the_same(project_dir, kernel):
    """Found by the trial: two sweep points' diff said "read Xs changed" when their data
    cells made equal arrays: an input was compared by its producer run too. Content
    hashed whole decides now; a value fingerprinted from a sample (over a few MB) still
    counts as changed when another run made it, since the sample does not prove it."""
    prep = "%%track prep\nimport numpy as np\nX = np.arange(12.0).reshape(3, 4) * scale"
    big = "%%track prep\nimport numpy as np\nX = np.ones(1_000_000) * scale"
    train = "%%track train\ns = X.sum()"
    seen = []
    for setup in (prep, big):
        kernel.ok("scale = 1.0")
        kernel.ok(setup)
        kernel.ok(train)
        kernel.ok(setup)  # made again, equal, by another run of prep
        seen.append(kernel.ok(train).text)
    assert "read X: changed" not in seen[0]
    assert "read X: changed (made by run" in seen[1]
    trains = _cell_runs(_settle(project_dir), "train")
    small = [next(i for i in r.named_inputs if i.name == "X") for r in trains[:2]]
    assert small[0].producer_run_id != small[1].producer_run_id  # two producers ...
    shown = run_cli("diff", trains[0].run_id, trains[1].run_id, cwd=project_dir).stdout
    assert "read X" not in shown, shown  # ... one content: no change to show


def test_a_failed_cell_records_the_literals_it_never_reached_as_written(project_dir, kernel):
    """Found by a new user's fifth trial: a cell that raised before ``lr = 0.7`` recorded
    ``lr=0.1``, the value an earlier cell had left, which this cell never set or read
    (``epochs = 9``, also not reached, was recorded as written). A literal the cell
    reached before failing keeps its value at the end."""
    kernel.ok("lr = 0.1\nn = 5")
    failed = kernel.run("%%track fit\nn = 100\nn *= 2\nb = int('x')\nlr = 0.7\nepochs = 9")
    assert failed.status == "error" and "lr=0.1" not in failed.text
    (run,) = _cell_runs(_settle(project_dir), "fit")
    assert run.status == "failed"
    assert run.params == {"n": 200, "lr": 0.7, "epochs": 9}


def test_dates_and_times_read_by_the_cell_are_parameters(project_dir, kernel):
    """Found by a new user's fifth trial: a training window (``start = date(2024, 1, 1)``)
    was an opaque read, and moving it said only "read start: changed". A date, a time
    and a datetime are parameters, recorded as ISO 8601 text (as MLflow's
    ``log_param`` would keep them)."""
    setup = (
        "import datetime\nstart = datetime.date(2024, 1, 1)\n"
        "cutoff = datetime.datetime(2024, 3, 1, 12, 30)\nat = datetime.time(6, 0)"
    )
    train = "%%track train\ndays = (cutoff.date() - start).days\nhour = at.hour"
    a, b, second = _train_twice(
        kernel, project_dir, setup, train, "start = datetime.date(2024, 2, 1)"
    )
    assert a.params == {"start": "2024-01-01", "cutoff": "2024-03-01T12:30:00", "at": "06:00:00"}
    assert b.params["start"] == "2024-02-01"
    assert "param start: '2024-01-01' → '2024-02-01' (upstream)" in second, second
    assert "read start" not in second


def test_a_dict_call_of_literals_in_the_cell_is_a_parameter(project_dir, kernel):
    """Found by a new user's fifth trial: ``params = dict(n_estimators=200, max_depth=3)``,
    the way XGBoost and LightGBM tutorials write their settings, was no parameter (a
    computed value), while ``{"n_estimators": 200}`` was one. A cell killed or failed
    after it still has it as written."""
    train = (
        "%%track train\nparams = dict(n_estimators=200, max_depth=3, objective='binary')\n"
        "grid = dict(C=[0.1, 1.0])\nmodel = sorted(params)"
    )
    kernel.ok(train)
    kernel.run("%%track broken\nparams = dict(depth=4)\nraise ValueError('x')")
    client = _settle(project_dir)
    (a,) = _cell_runs(client, "train")
    (b,) = _cell_runs(client, "broken")
    assert a.params == {
        "params": {"n_estimators": 200, "max_depth": 3, "objective": "binary"},
        "grid": {"C": [0.1, 1.0]},
    }
    assert a.param_sources == {"params": "auto", "grid": "auto"}
    assert b.params == {"params": {"depth": 4}}


def test_a_float32_parameter_is_the_number_written(project_dir, kernel):
    """Found by a new user's fifth trial: ``lr = np.float32(0.1)`` was recorded as
    0.10000000149011612 (float32's exact value widened), so ``--where "lr = 0.1"`` missed
    the run and its diff with ``lr = 0.1`` read "changed 0.1 → 0.1"."""
    kernel.ok("import numpy as np\nlr = np.float32(0.1)\nscale = np.float16(0.3)")
    kernel.ok("%%track fit\nstep = lr * scale")
    kernel.ok("lr = 0.1\nscale = 0.3")
    kernel.ok("%%track fit\nstep = lr * scale")
    a, b = _cell_runs(_settle(project_dir), "fit")
    assert a.params == b.params == {"lr": 0.1, "scale": 0.3}
    found = run_cli("ls", "--where", "lr = 0.1", "--json", cwd=project_dir)
    assert found.stdout.count('"run_id"') == 2, found.stdout + found.stderr


def test_a_config_cell_of_dates_paths_and_numpy_scalars_run_again_equal_is_no_change(
    project_dir, kernel
):
    """Found by a new user's fifth trial: a config cell run again with the same
    ``start = date(2024, 1, 1)`` warned "stale input: days was made by In[4] from start,
    which was changed since": equal numbers and strings were no change, equal dates,
    paths and numpy scalars were. Another value still is."""
    cfg = (
        "import datetime, pathlib\nimport numpy as np\nstart = datetime.date(2024, 1, 1)\n"
        "root = pathlib.Path('data')\nalpha = np.float32(0.5)"
    )
    kernel.ok(cfg, cell_id="cfg")
    kernel.ok("days = ((datetime.date(2024, 3, 1) - start).days, root.name, alpha)", cell_id="mk")
    kernel.ok(cfg, cell_id="cfg")
    use = "%%track use\nn = days"
    same = kernel.ok(use, cell_id="use")
    kernel.ok("start = datetime.date(2024, 2, 1)", cell_id="cfg")
    moved = kernel.ok(use, cell_id="use")
    assert "stale" not in same.text, same.text
    assert "stale input: days was made by In[3] from start" in moved.text, moved.text


def test_a_dict_built_from_a_base_config_in_the_cell_is_a_parameter(project_dir, kernel):
    """Found by the sixth trial: a LightGBM cell built its settings from an earlier
    cell's ``BASE`` (``params = {**BASE, "num_leaves": 15}``, then
    ``params["learning_rate"] = 0.05``) and recorded only ``BASE``, whose learning rate
    (0.1) was not the one trained with; changing the override changed no parameter."""
    kernel.ok("import copy\nBASE = {'objective': 'binary', 'learning_rate': 0.1}\nrows = [1, 2]")
    train = (
        "%%track train\nparams = {**BASE, 'num_leaves': 15}\nparams['learning_rate'] = {lr}\n"
        "merged = BASE | {'seed': 0}\nkw = dict(BASE, seed=1)\ncfg = copy.deepcopy(BASE)\n"
        "cfg.update(depth=3)\nn = len(rows)\nstats = {**{'n': n}}\nflags = n | 4"
    )
    kernel.ok(train.replace("{lr}", "0.05"))
    out = kernel.ok(train.replace("{lr}", "0.2")).text
    client = _settle(project_dir)
    a, b = _cell_runs(client, "train")
    base = {"objective": "binary", "learning_rate": 0.1}
    assert a.params == {
        "BASE": base,
        "rows": [1, 2],
        "params": {**base, "num_leaves": 15, "learning_rate": 0.05},
        "merged": {**base, "seed": 0},
        "kw": {**base, "seed": 1},
        "cfg": {**base, "depth": 3},
    }
    assert a.param_sources["params"] == "auto" and a.param_sources["BASE"] == "upstream"
    assert b.params["params"]["learning_rate"] == 0.2
    assert "param params.learning_rate: 0.05 → 0.2" in out, out


def test_names_read_by_time_magics_and_shell_lines_are_parameters(project_dir, kernel):
    """Found by the sixth trial: ``%time model = fit(N_EST)`` and ``!echo depth={DEPTH}``
    hold their code as strings for IPython, so the cell read neither ``N_EST`` nor
    ``DEPTH``: changing them upstream left the run's parameters as they were."""
    train = (
        "%%track train -m score\n%time model = sorted(range(N_EST))\n"
        "%timeit -n 1 -r 1 sum(range(REPEAT))\n!echo depth={DEPTH} $TAG > depth.txt\n"
        "score = model[-1] / 10"
    )
    kernel.ok("N_EST, DEPTH, REPEAT, TAG = 20, 3, 5, 'a'", cell_id="setup")
    first = kernel.ok(train, cell_id="train").text
    kernel.ok("N_EST, DEPTH, REPEAT, TAG = 50, 4, 5, 'b'", cell_id="setup")
    second = kernel.ok(train, cell_id="train").text
    assert "Wall time" in first and "per loop" in first  # the magics print as untracked
    client = _settle(project_dir)
    a, b = _cell_runs(client, "train")
    assert a.params == {"N_EST": 20, "REPEAT": 5, "DEPTH": 3, "TAG": "a"}
    assert b.params == {"N_EST": 50, "REPEAT": 5, "DEPTH": 4, "TAG": "b"}
    assert "model" not in a.params and b.metrics["score"] == 4.9
    assert "param N_EST: 20 → 50 (upstream)" in second, second
    assert (project_dir / "depth.txt").read_text() == "depth=4 b\n"


def test_a_config_object_made_in_the_cell_is_a_parameter_not_its_class_defaults(
    project_dir, kernel
):
    """Found by the sixth trial: ``cfg = TrainConfig(lr=0.2)`` in the tracked cell recorded
    ``TrainConfig={'lr': 0.1, 'epochs': 3}`` (the dataclass's defaults, as a class the
    cell read) and not ``cfg``: the run said lr 0.1 for a model trained with 0.2; nor
    were ``SimpleNamespace(lr=0.3)`` and ``parser.parse_args(['--lr', '0.05'])``."""
    kernel.ok(
        "import argparse\nfrom dataclasses import dataclass, field\n"
        "from types import SimpleNamespace\n@dataclass\nclass TrainConfig:\n"
        "    lr: float = 0.1\n    epochs: int = 3\n"
        "    layers: list = field(default_factory=lambda: [16, 8])\n"
        "parser = argparse.ArgumentParser()\nparser.add_argument('--lr', type=float)\n"
        "base_lr = 0.4"
    )
    kernel.ok(
        "%%track train\ncfg = TrainConfig(lr=0.2)\nns = SimpleNamespace(lr=0.3, epochs=2)\n"
        "args = parser.parse_args(['--lr', '0.05'])\nn = round(2.5)\nx = cfg.lr + ns.lr + args.lr\n"
        "tuned = TrainConfig(lr=base_lr, epochs=4)"
    )
    (run,) = _cell_runs(_settle(project_dir), "train")
    assert run.params == {
        "cfg": {"lr": 0.2, "epochs": 3, "layers": [16, 8]},
        "ns": {"lr": 0.3, "epochs": 2},
        "args": {"lr": 0.05},
        "tuned": {"lr": 0.4, "epochs": 4, "layers": [16, 8]},
        "base_lr": 0.4,
    }
    assert run.param_sources["tuned"] == "auto" and run.param_sources["base_lr"] == "upstream"
