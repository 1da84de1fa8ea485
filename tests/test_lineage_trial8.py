"""Notebook shapes of the eighth trial, in real kernels: what the record says.

Each test is a reproducer from the eighth trial: a notebook pattern the earlier trials
did not try, and what a careful data scientist says the run must record.
"""

from __future__ import annotations

from conftest import run_cli
from test_lineage import _cell_runs
from test_lineage_shapes import stale_after_equal_rebind
from test_magics import _settle


def test_a_config_a_function_of_the_cell_changes_is_recorded_as_the_cell_left_it(
    project_dir, kernel
):
    """Found by the trial: ``tweak(opts, 0.9)`` (a notebook function setting
    ``d["lr"] = lr`` on the dict it is given) trained with lr 0.9, and the run recorded
    the 0.1 of the upstream ``opts``, with no word. A container passed to a call in a
    loop is the loop's, as ``history.append(loss)`` is: kept as read."""
    kernel.ok(
        "from types import SimpleNamespace\n"
        "opts = {'lr': 0.1, 'wd': 0.0}\nargs = SimpleNamespace(epochs=3)\nhistory = []\n"
        "size = {'h': 8}\n"
        "def tweak(d, lr):\n    d['lr'] = lr\n"
        "def set_epochs(ns, n):\n    ns.epochs = n\n"
        "def record(h, v):\n    h.append(v)"
    )
    train = kernel.ok(
        "%%track train\ntweak(opts, 0.9)\nset_epochs(ns=args, n=5)\nwidth = len(size)\n"
        "for e in range(2):\n    record(history, e * opts['lr'])"
    )
    (run,) = _cell_runs(_settle(project_dir), "train")
    assert run.params == {
        "opts": {"lr": 0.9, "wd": 0.0},
        "args": {"epochs": 5},
        "size": {"h": 8},
        "history": [],
    }
    assert run.param_sources == {
        "opts": "auto",
        "args": "auto",
        "size": "upstream",
        "history": "upstream",
    }
    assert "param opts changed by the cell: {'lr': 0.1, 'wd': 0.0} → {'lr': 0.9" in train.text


def test_decimal_and_fraction_settings_are_parameters_and_a_decimal_is_a_metric(
    project_dir, kernel
):
    """Found by the trial (a known gap): ``RATE = Decimal("0.05")`` read by a tracked cell
    was an opaque named input, not a parameter, and ``-m total`` on a Decimal said "not a
    metric". A number a float holds exactly is that number; another is its text (1/3)."""
    kernel.ok(
        "from decimal import Decimal\nfrom fractions import Fraction\n"
        "RATE, SPLIT, HALF = Decimal('0.05'), Fraction(1, 3), Fraction(1, 2)"
    )
    shown = kernel.ok(
        "%%track money -m total\ntotal = RATE * 100 * int(1 / HALF)\nparts = SPLIT * 3"
    )
    assert "not a metric" not in shown.text
    (run,) = _cell_runs(_settle(project_dir), "money")
    assert run.params == {"RATE": 0.05, "SPLIT": "1/3", "HALF": 0.5}
    assert run.param_sources == dict.fromkeys(run.params, "upstream")
    assert run.metrics["total"] == 10.0


def test_an_object_its_own_method_trains_is_recorded_as_the_cell_read_it(project_dir, kernel):
    """Found by the trial: ``trainer.fit(X)`` on a notebook ``Trainer(lr=LR, epochs=3)``
    that appends to ``self.history`` recorded the history the fit made as the parameter,
    warned "param trainer changed by the cell", and every run again said the parameter
    changed. What the cell read is the setting; its method's work is the result. A dict's
    own methods (``cfg.update(...)``) still change the setting."""
    kernel.ok(
        "class Trainer:\n"
        "    def __init__(self, lr, epochs):\n"
        "        self.lr, self.epochs, self.history = lr, epochs, []\n"
        "    def fit(self):\n"
        "        for e in range(self.epochs):\n"
        "            self.history.append(self.lr * e)\n"
        "        return self\n"
        "trainer = Trainer(lr=0.05, epochs=3)\ncfg = {'depth': 3}"
    )
    fit = "%%track fit\ntrainer.fit()\ncfg.update(depth=9)\nlast = trainer.history[-1]"
    first = kernel.ok(fit)
    kernel.ok(fit)
    a, b = _cell_runs(_settle(project_dir), "fit")
    assert a.params == {
        "trainer": {"lr": 0.05, "epochs": 3, "history": []},
        "cfg": {"depth": 9},
    }
    assert a.param_sources == {"trainer": "upstream", "cfg": "auto"}
    assert b.params["trainer"]["history"] == [0.0, 0.05, 0.1]  # it trained on
    assert "param trainer changed" not in first.text
    assert "param cfg changed by the cell" in first.text


def test_a_config_the_cell_hands_on_then_rebinds_is_recorded_as_read(project_dir, kernel):
    """The cell used the upstream values, then bound new objects to the names: the
    names no longer hold what was read, so no change in place is recorded (``print(cfg)``
    or ``cfg.copy()`` then ``cfg = {...}`` recorded the new dict as the one used)."""
    kernel.ok("layers = [64]\ncfg = {'lr': 0.1}\nbase = {'depth': 2}")
    out = kernel.ok(
        "%%track build\nprint(cfg)\nwidth = len(layers)\nkeep = base.copy()\n"
        "layers = [128]\ncfg = dict(lr=1.0)\nbase = {'depth': keep['depth'] + 1}"
    )
    (run,) = _cell_runs(_settle(project_dir), "build")
    read = {"layers": [64], "cfg": {"lr": 0.1}, "base": {"depth": 2}}
    assert run.params == {**read, "keep": {"depth": 2}}  # (a copy of a config: its own)
    assert run.param_sources == {**dict.fromkeys(read, "upstream"), "keep": "auto"}
    assert "changed by the cell" not in out.text


def test_a_literal_in_a_branch_not_taken_is_recorded_as_the_value_the_cell_used(
    project_dir, kernel
):
    """Found by the trial: ``if DEBUG: n_samples = 100`` with DEBUG off used the upstream
    10000, recorded as the cell's own literal (``auto``); a cell that then failed recorded
    the 100 it never assigned. A literal in an ``if``/``try``/``match`` whose name still
    holds what it held at the start was not assigned: it is the value read."""
    kernel.ok("n_samples = 10000\nDEBUG = False\nhidden = 32")
    kernel.ok(
        "%%track prep\nif DEBUG:\n    n_samples = 100\nelse:\n    hidden = 64\nrows = n_samples * 2"
    )
    kernel.ok("hidden = 32")
    failed = kernel.run(
        "%%track fail\nif DEBUG:\n    n_samples = 100\nrows = n_samples * 2\nraise ValueError('x')"
    )
    assert failed.status == "error"
    kernel.ok("DEBUG = True")
    kernel.ok("%%track prep\nif DEBUG:\n    n_samples = 100\nrows = n_samples * 2")
    client = _settle(project_dir)
    prep, debug = _cell_runs(client, "prep")
    (fail,) = _cell_runs(client, "fail")
    assert prep.params == {"DEBUG": False, "n_samples": 10000, "hidden": 64}
    assert prep.param_sources == {"DEBUG": "upstream", "n_samples": "upstream", "hidden": "auto"}
    assert fail.params == {"DEBUG": False, "n_samples": 10000}
    assert fail.param_sources == {"DEBUG": "upstream", "n_samples": "upstream"}
    assert debug.params == {"DEBUG": True, "n_samples": 100}
    assert debug.param_sources == {"DEBUG": "upstream", "n_samples": "auto"}


def test_a_dict_of_settings_and_names_in_the_cell_is_a_parameter(project_dir, kernel):
    """Found by the trial: XGBoost's ``params = {"max_depth": DEPTH, "eta": lr,
    "objective": "binary:logistic"}`` recorded DEPTH and lr but not the dict, so the
    objective and every other setting written there were in no parameter, while
    ``dict(max_depth=3)`` and ``TrainConfig(lr=lr)`` were. A dict of literals and names
    found is the cell's own setting, with its value at the end."""
    kernel.ok("lr = 0.1\nDEPTH = 4\nSEED = 1\nrows = [1, 2, 3]")
    kernel.ok(
        "%%track fit\n"
        "params = {'eta': lr, 'max_depth': DEPTH, 'objective': 'binary:logistic'}\n"
        "params.update(seed=SEED)\n"
        "extra = dict(alpha=lr, n_estimators=50)\n"
        "n = len(rows)\nsizes = {'n': n, 'k': 2}"
    )
    (run,) = _cell_runs(_settle(project_dir), "fit")
    assert run.params["params"] == {
        "eta": 0.1,
        "max_depth": 4,
        "objective": "binary:logistic",
        "seed": 1,
    }
    assert run.params["extra"] == {"alpha": 0.1, "n_estimators": 50}
    assert run.param_sources["params"] == run.param_sources["extra"] == "auto"
    assert run.params["lr"] == 0.1 and run.param_sources["lr"] == "upstream"
    assert "sizes" not in run.params  # made from a value the cell computed


def test_a_config_cell_of_decimals_run_again_equal_makes_nothing_stale(project_dir, kernel):
    """As for floats and dates: ``RATE = Decimal("0.05")`` bound again equal is no change,
    so ``fee`` made from it is not called stale; another value is a change."""
    cells = {"cfg": "from decimal import Decimal\nRATE = Decimal('0.05')", "make": "fee = RATE * 2"}
    seen = stale_after_equal_rebind(
        kernel, cells, "%%track use\ncost = fee * 3", "RATE = Decimal('0.07')"
    )
    assert ["stale input" in r.text for r in seen] == [False, True]


def test_a_float32_metric_is_the_number_written(project_dir, kernel):
    """Found by the trial: ``-m acc`` on ``np.float32(0.9)`` (an accuracy computed in
    float32) stored 0.8999999761581421, so ``nbtrack check "acc >= 0.9"`` failed on a run
    whose summary said 0.9. As parameters already are: the number written."""
    kernel.ok("import numpy as np")
    kernel.ok(
        "%%track ev -m acc -m curve\nacc = np.float32(0.9)\n"
        "curve = np.array([0.1, 0.3], dtype=np.float32)\n"
        "nbtrack.log_metric('f1', np.float32(0.7))"
    )
    (run,) = _cell_runs(_settle(project_dir), "ev")
    assert (run.metrics["acc"], run.metrics["f1"], run.metrics["curve"]) == (0.9, 0.7, 0.3)
    assert run_cli("check", "acc >= 0.9", cwd=project_dir).returncode == 0


def test_an_empty_container_a_loop_fills_is_no_parameter(project_dir, kernel):
    """Found by the eighth trial: ``losses = []`` then ``losses.append(...)`` per epoch
    recorded the parameter ``losses=[]`` (a literal a loop changes is recorded as
    written). An empty list, dict or text a loop fills is the loop's result, not a
    setting; an empty setting no loop touches, and a number a loop decays, still are."""
    kernel.ok(
        "%%track fit\nlr = 0.1\nlosses = []\nseen = {}\nlog = ''\nexclude = []\n"
        "for epoch in range(3):\n    losses.append(lr * epoch)\n    seen[epoch] = lr\n"
        "    log += 'x'\n    lr *= 0.5\nkept = [c for c in 'abc' if c not in exclude]"
    )
    (run,) = _cell_runs(_settle(project_dir), "fit")
    assert run.params == {"lr": 0.1, "exclude": []}
    assert run.param_sources == {"lr": "auto", "exclude": "auto"}


def test_a_p_name_the_cell_reads_then_rebinds_records_the_value_it_read(project_dir, kernel):
    """Found by the eighth trial: with ``-p lr``, ``y = lr; lr = lr * 2`` recorded
    ``lr=0.2``, the value the cell left, though it ran with 0.1. A parameter is an input:
    a ``-p`` name the cell reads is recorded as read, and the rebinding is said; one the
    cell only assigns is recorded as assigned."""
    kernel.ok("lr = 0.1")
    shown = kernel.ok("%%track fit -p lr -p depth\ny = lr * 10\nlr = lr * 2\ndepth = 3")
    (run,) = _cell_runs(_settle(project_dir), "fit")
    assert run.params == {"lr": 0.1, "depth": 3}
    assert run.param_sources == {"lr": "flag", "depth": "flag"}
    assert "param lr changed by the cell: 0.1 → 0.2" in shown.text
