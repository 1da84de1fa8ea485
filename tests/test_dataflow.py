"""The dataflow analysis of a cell: which names it reads from the namespace, which it binds."""

from __future__ import annotations

import pytest

from nbtrack.codeflow import notebook_reads
from nbtrack.dataflow import analyze


@pytest.mark.parametrize(
    ("code", "reads"),
    [
        ("clf = SVC(gamma=gamma)", ["SVC", "gamma"]),
        ("n = 100\nn *= 2", []),
        ("n *= 2", ["n"]),
        ("x = x + 1", ["x"]),
        ("y = 1\nz = y + w", ["w"]),
        ("for i in range(k):\n    total = total + i", ["range", "k", "total"]),
        ("[a * i for i in items if i > lim]", ["items", "lim", "a"]),
        ("{k: v for k, v in d.items()}", ["d"]),
        ("if (m := size) > 3:\n    print(m)", ["size", "print"]),
        ("import numpy as np\nnp.zeros(n)", ["n"]),
        ("from math import pi\nr = pi * radius", ["radius"]),
        (
            "try:\n    f()\nexcept ValueError as e:\n    print(e, g)",
            ["f", "ValueError", "print", "g"],
        ),
        ("with open(path) as fh:\n    data = fh.read()", ["open", "path"]),
        ("df['c'] = df['a'] * factor", ["df", "factor"]),
        ("del cache", []),
        ("class M:\n    depth = max_depth\n    w = depth * 2", ["max_depth"]),
        ("lambda x: x * scale", ["scale"]),
        ("def f(a, b=default_b):\n    return a * scale + b\nf(1)", ["default_b", "scale"]),
        ("def f(a, b=default_b):\n    return a * scale + b", ["default_b"]),  # never called
        ("def f():\n    return lr\nlr = 0.1\nf()", []),  # the cell binds lr itself
        ("match cmd:\n    case [op, arg]:\n        run(op, arg)", ["cmd", "run"]),
        ("async def f():\n    await g(h)\nc = f()", ["g", "h"]),
    ],
)
def test_names_read_before_the_cell_binds_them_are_its_inputs(code, reads):
    assert list(analyze(code).reads) == reads


def test_assignments_mutations_and_literals_are_told_apart():
    flow = analyze(
        "lr = 0.01\nlayers = [64, 32]\na, b = 1, 'x'\nn = 100\nn *= 2\n"
        "m = 5\nm = len(data)\ndf['new'] = 1\nmodel.coef = w\n"
        "import os\ndel tmp\ndef f():\n    global counter\n    counter = 1\n"
        "X /= 10\nraw.dropna(inplace=True)\nfits = [m.fit() for m in models]\n"
    )
    assert flow.assigns == {"lr", "layers", "a", "b", "n", "m", "os", "tmp", "f", "counter",
                            "X", "fits"}  # fmt: skip
    # changed in place, or may be: stores into them, augmented assignments, methods
    assert flow.mutates == {"df", "model", "n", "X"}
    assert flow.called == {"raw", "len"}  # m is the comprehension's own; len(x) calls len
    literals = [k for k in flow.literals if k not in flow.config_calls]
    assert literals == ["lr", "layers", "a", "b", "n"]  # m became computed
    assert flow.config_calls == {"m"}  # a call of names: a parameter only if a config object
    assert not flow.dynamic and flow.error is None


@pytest.mark.parametrize(
    "code", ["globals()['lr']", "exec('x = 1')", "from numpy import *", "def f():\n    eval('a')"]
)
def test_code_the_analysis_cannot_see_through_is_flagged_dynamic(code):
    assert analyze(code).dynamic


def test_a_cell_that_does_not_parse_has_no_flow_and_says_why():
    flow = analyze("x = (")
    assert flow.reads == () and flow.assigns == frozenset()
    assert flow.error is not None and flow.error.startswith("cannot parse the cell")


def test_names_read_through_notebook_functions_are_followed_transitively():
    ns: dict = {"__name__": "__main__", "gamma": 0.001, "C": 1.0, "unused": 5, "SVC": dict}
    exec(
        "def make():\n    return SVC(gamma=gamma)\n"
        "def train():\n    global fitted\n    fitted = make()\n    return [C * i for i in range(3)]\n"
        "class Trainer:\n    def fit(self):\n        return train()\n",
        ns,
    )
    ns["trainer"] = ns["Trainer"]()

    via, bound = notebook_reads(["train"], ns)
    assert via == {"make": "train", "C": "train", "SVC": "make", "gamma": "make"}
    assert bound == {"fitted"}

    via, _ = notebook_reads(["trainer"], ns)  # an instance: its class's methods are followed
    assert via["gamma"] == "make" and "unused" not in via


def test_library_code_is_not_followed():
    import json

    ns = {"__name__": "__main__", "json": json, "dumps": json.dumps, "indent": 2}
    assert notebook_reads(["json", "dumps"], ns) == ({}, frozenset())


def test_following_is_bounded():
    ns: dict = {"__name__": "__main__"}
    for i in range(50):
        exec(f"def f{i}():\n    return f{i + 1}()", ns)
    via, _ = notebook_reads(["f0"], ns, limit=10)
    assert len(via) == 10


def test_pandas_query_and_eval_strings_read_their_at_names():
    flow = analyze("n = len(df.query('a > @lo and b < @hi'))\nm = pd.eval(f'@k + {1}')")
    assert flow.reads == ("len", "df", "lo", "hi", "pd", "k")
    # not for a method of another name, nor a string that is not the expression
    assert analyze("s.replace('@x', y)").reads == ("s", "y")


def test_code_in_time_magics_and_shell_lines_is_read_as_the_cell_s():
    flow = analyze(
        "get_ipython().run_line_magic('time', 'm = fit(n)')\n"
        "get_ipython().run_line_magic('timeit', '-n 3 -r 1 t = g(k)')\n"
        "out = get_ipython().getoutput('echo {depth} $tag $$HOME')\n"
        "get_ipython().run_line_magic('matplotlib', 'inline')"
    )
    assert flow.reads == ("get_ipython", "fit", "n", "g", "k", "depth", "tag")
    assert flow.assigns == {"m", "out"}  # %timeit's t is its timing function's


def test_a_name_read_before_the_cell_rebinds_it_to_a_literal_is_an_input_not_a_literal():
    flow = analyze("print(epochs)\nepochs = 3\nlr = 0.1")
    assert "epochs" in flow.reads and flow.literals == ("lr",)


def test_literals_a_loop_changes_are_told_apart_from_those_changed_after_it():
    flow = analyze(
        "total = 0\nlr = 0.1\nn = 100\nfor x in xs:\n    total += x\n    lr = lr * 0.5\n"
        "n *= 2\nk = 1\nwhile k < 9:\n    k *= 3\nk = 2"
    )
    assert flow.literals == ("total", "lr", "n", "k")
    assert flow.loop_changed == {"total", "lr"}  # k was written again after its loop
