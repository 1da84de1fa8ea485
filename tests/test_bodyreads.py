"""The names a function or lambda a cell defines reads when it is called."""

from __future__ import annotations

import ast

from nbtrack.bodyreads import BodyReads, body_reads

TRAIN = """\
def train(rows, *extra, lr=base_lr, **opts):
    global best
    import numpy as np
    from math import log as ln
    try:
        model = fit(rows, lr=lr, seed=seed)
    except ValueError as err:
        log(err, np, ln)
    def inner():
        nonlocal model
        return model, depth
    class Net:
        width = hidden
    best = [score(m) for m in models if m.ok] + (lambda x: x * scale)(2)
    report = df.query("a > @limit")
    return inner, Net, eval(code)
"""


def test_a_body_reads_its_free_names_in_source_order():
    # given a function that binds names every way a body can, and reads others
    fn = ast.parse(TRAIN).body[0]
    # when its body is read
    found = body_reads(fn)
    # then arguments, imports, `except ... as`, nested definitions, assignments and
    # comprehension targets are its own; `nonlocal` ones, `@names` of a pandas query
    # and the rest are read when it is called; `global` ones it binds in the module
    assert found == BodyReads(
        free=["base_lr", "fit", "seed", "ValueError", "log", "model", "depth", "hidden",
              "score", "models", "scale", "limit", "df", "eval", "code"],
        globals=["best"],
        dynamic=True,  # eval()
    )  # fmt: skip


def test_a_lambda_reads_what_its_body_does_not_bind():
    lam = ast.parse("lambda a, *, k=None: a * scale + k + (n := 1) + n").body[0].value  # type: ignore[attr-defined]
    assert body_reads(lam) == BodyReads(free=["scale"], globals=[], dynamic=False)
