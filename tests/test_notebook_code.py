"""Notebook code a tracked cell calls, written the ways users write it: what the record says.

Each test is a reproducer from a new user's seventh trial (issue 15).
"""

from __future__ import annotations

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
