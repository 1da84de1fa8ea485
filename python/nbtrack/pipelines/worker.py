"""A worker process of the local pool: executes one notebook at a time, for as long as it is fed.

Protocol (one JSON document per line): the parent writes ``{"spec": ExecutionSpec}`` to
the worker's stdin, the worker answers ``{"outcome": ExecutionOutcome}`` on the pipe it
was given as stdout. Anything else the worker or papermill would print goes to stderr,
so stray output can never corrupt an answer. End of stdin ends the worker.

A process per worker (not per execution) keeps papermill's import out of every
execution; a worker that dies mid-execution fails only the execution it was running.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import IO


def serve() -> None:
    """Answer execution requests from stdin until it closes."""
    from .execute import skip_unused_imports

    skip_unused_imports()

    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    # From here on fd 1 is stderr: prints from any library cannot reach the answers pipe.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C between executions: just stop
        _answer(answers)


def _answer(answers: IO[str]) -> None:
    from .execute import INTERRUPTED, ExecutionOutcome, ExecutionSpec, execute

    for line in sys.stdin:
        if not line.strip():
            continue
        spec = ExecutionSpec.from_dict(json.loads(line)["spec"])
        stop = False
        try:
            outcome = execute(spec)
        except KeyboardInterrupt:  # the sweep's Ctrl-C, passed on: answer, then stop
            outcome, stop = ExecutionOutcome("failed", INTERRUPTED, None, 0.0), True
        answers.write(json.dumps({"outcome": outcome.to_dict()}) + "\n")
        answers.flush()
        if stop:
            return


if __name__ == "__main__":
    serve()
