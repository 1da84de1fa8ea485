"""Waiting for another thread or process: poll a condition, fail with what was last seen.

A fixed sleep is too short on a busy machine and too long on an idle one; a loop
that gives up quietly lets the test fail later on an unrelated assertion.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_until(
    observe: Callable[[], T],
    done: Callable[[T], bool] = bool,
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str = "the condition",
) -> T:
    """Call ``observe`` until ``done(value)`` holds and return that value.

    On timeout the test fails naming ``what`` it waited for and the value it last saw.

    >>> wait_until(lambda: sorted(folder.iterdir()), what="a file in the folder")  # doctest: +SKIP
    """
    deadline = time.monotonic() + timeout
    while True:
        seen = observe()
        if done(seen):
            return seen
        if time.monotonic() >= deadline:
            pytest.fail(f"waited {timeout:g} s for {what}; last saw: {seen!r}")
        time.sleep(interval)
