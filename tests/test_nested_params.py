"""The values inside a config parameter are columns: filter, sort, list and frame them.

A config object or dict (``class CFG``, ``argparse.Namespace``, ``cfg = {...}``) is one
parameter holding JSON; ``cfg.lr`` reaches a value inside it wherever a parameter's
name is accepted (``--where``, ``--sort``, ``--columns``, ``nbtrack.runs()``, the REST
filter), and ``ls`` shows a config as the leaves that tell the runs apart.
"""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest

from conftest import run_cli
from nbtrack.client import Client
from nbtrack.exceptions import QueryError
from nbtrack.models import RunQuery
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter
from test_lineage import _cell_runs
from test_magics import _settle


def test_a_config_class_read_by_a_cell_is_filtered_sorted_and_listed_by_its_fields(
    project_dir, kernel
):
    # Given: a Kaggle-style CFG class read by a tracked cell, run with lr 0.001 then 0.01
    kernel.ok("class CFG:\n    lr = 1e-3\n    epochs = 3\n    opt = {'name': 'adam', 'b1': 0.9}")
    train = "%%track train\nhist = [CFG.lr * i for i in range(CFG.epochs)]\nname = CFG.opt['name']"
    kernel.ok(train)
    kernel.ok("CFG.lr = 1e-2")
    kernel.ok(train)
    slow, fast = _cell_runs(_settle(project_dir), "train")

    # When: the runs are filtered, sorted and listed by the config's fields
    where = run_cli("ls", "--where", "cfg.lr > 0.005", "--csv", cwd=project_dir)
    nested_where = run_cli("ls", "--where", "CFG.opt.name = 'adam'", "--csv", cwd=project_dir)
    by_lr = run_cli("ls", "--sort", "CFG.lr", "--asc", "--columns", "run,CFG.lr", cwd=project_dir)
    table = run_cli("ls", cwd=project_dir)
    frame = kernel.ok(
        "import nbtrack\nf = nbtrack.runs()\n"
        "print(f['params.CFG.lr'].tolist(), str(f['params.CFG.epochs'].dtype),"
        " f['params.CFG.opt.name'].tolist())"
    )

    # Then: each reaches the value inside the config
    assert where.returncode == 0, where.stderr
    assert [line.split(",")[0] for line in where.stdout.splitlines()[1:]] == [fast.short_id]
    assert len(nested_where.stdout.splitlines()) == 3, nested_where.stdout
    assert by_lr.returncode == 0, by_lr.stderr
    rows = [line.split() for line in by_lr.stdout.splitlines()]
    assert rows == [["run", "CFG.lr"], [slow.short_id, "0.001"], [fast.short_id, "0.01"]]
    # ... the table shows the field that differs first, not the config's JSON
    header = table.stdout.splitlines()[0].split()
    assert header[:4] == ["run", "name", "status", "CFG.lr"], table.stdout
    assert "CFG" not in header and "CFG.epochs" in header
    # ... and nbtrack.runs() has a typed column per field, newest first
    assert frame.text.strip() == "[0.01, 0.001] Int64 ['adam', 'adam']"


def _record(project, params_list, prefix="r"):
    for i, params in enumerate(params_list):
        w = RunWriter.start(project, kind="cell", name=f"{prefix}{i}", params=params)
        w.log_metric("acc", i / 10)
        w.finish("finished")


def test_leaves_of_every_shape_are_columns_and_a_name_of_its_own_is_kept(project_dir):
    # Given: configs whose leaves differ in type and presence, a list leaf, a key that
    # is not a plain name, and a parameter whose own name is "cfg.seed"
    project = resolve_project(project_dir)
    _record(
        project,
        [
            {"cfg": {"lr": 0.1, "sched": "cos", "layers": [64, 32], "a b": 1}, "cfg.seed": 5},
            {"cfg": {"lr": "auto", "sched": "cos", "seed": 1}, "cfg.seed": 6},
            {"cfg": {"lr": 0.3, "warmup": 10}},
        ],
    )
    client = Client(project)

    def names(where: str, *, safe: bool = False) -> list[str]:
        page = client.list_runs(RunQuery(where=where, sort="name", descending=False), safe=safe)
        return [r.name or "" for r in page.runs]

    # Then: a leaf of mixed types is text, a missing leaf is NULL ...
    assert names("cfg.lr = 'auto'") == ["r1"]
    assert names("cfg.warmup IS NULL") == ["r0", "r1"]
    assert names("cfg.warmup >= 10") == ["r2"]
    # ... a list is one text column of its JSON
    assert names("cfg.layers = '[64,32]'") == ["r0"]
    # ... a parameter named "cfg.seed" keeps the name (the leaf cfg.seed is not a column)
    assert names("cfg.seed = 6") == ["r1"]
    # ... the filter that arrives over HTTP (the allow-list) reaches leaves as well
    assert names("params.cfg.sched = 'cos' AND cfg.layers IS NOT NULL", safe=True) == ["r0"]
    # ... and a key that is not a plain name is no column: one clear error
    with pytest.raises(QueryError, match="unknown column 'cfg.a b'"):
        names('"cfg.a b" = 1')
    frame = client.runs_frame(sort="name", descending=False)
    assert (
        frame["params.cfg.warmup"].tolist()[2] == 10 and frame["params.cfg.warmup"][:2].isna().all()
    )
    assert frame["params.cfg.seed"].tolist()[:2] == [5, 6] and pd.isna(frame["params.cfg.seed"][2])
    assert "params.cfg.a b" not in frame.columns
    # ... the table shows a config by its leaves, and whole where a run's value is no
    # config (r1's "cfg.seed" is a parameter of its own, r2 has none)
    _record(project, [{"opt": {"name": "adam"}}, {"opt": "sgd"}], prefix="s")
    header = run_cli("ls", "--limit", "2", cwd=project_dir).stdout.splitlines()[0].split()
    assert "opt" in header and "opt.name" in header
    # ... and the CSV of ls carries the whole config as JSON, as the store holds it
    shown = run_cli("ls", "--csv", "--sort", "name", "--asc", "--columns", "name,params.cfg",
                    cwd=project_dir)  # fmt: skip
    rows = list(csv.reader(io.StringIO(shown.stdout)))
    assert rows[0] == ["name", "cfg"]
    assert json.loads(rows[1][1]) == {"lr": 0.1, "sched": "cos", "layers": [64, 32], "a b": 1}


def test_a_settings_dict_wider_than_a_list_parameter_is_still_a_parameter(project_dir, kernel):
    # Given: an 80-key settings dict (past the 50 items of a list parameter) read by a
    # tracked cell, whose lr changes between two runs
    kernel.ok("cfg = {f'w{i}': i for i in range(79)}\ncfg['lr'] = 0.1")
    train = "%%track train\nloss = cfg['lr'] * cfg['w3']"
    kernel.ok(train)
    kernel.ok("cfg['lr'] = 0.3")
    out = kernel.ok(train)

    # Then: the change is named under the cell, not "read cfg: changed" ...
    assert "param cfg.lr: 0.1 → 0.3 (upstream)" in out.text, out.text
    # ... and cfg.lr is a column to filter by
    first, second = _cell_runs(_settle(project_dir), "train")
    where = run_cli("ls", "--where", "cfg.lr > 0.2", "--csv", cwd=project_dir)
    assert [line.split(",")[0] for line in where.stdout.splitlines()[1:]] == [second.short_id]
    assert first.params["cfg"]["lr"] == 0.1 and len(first.params["cfg"]) == 80
    # A dict keyed by numbers (data, not settings) of that size stays a named input
    kernel.ok("by_id = {i: i * 2 for i in range(80)}")
    kernel.ok("%%track counts\ntotal = sum(by_id.values())")
    [counts] = _cell_runs(_settle(project_dir), "counts")
    assert "by_id" not in counts.params and "by_id" in {i.name for i in counts.named_inputs}
