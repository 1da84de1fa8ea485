"""A ``%%track`` cell behaves exactly like the same cell untracked (execution.py).

Two real kernels run the same cells in the same order, one with ``%%track`` on
each cell and one without, so their ``In [n]`` agree; their iopub messages must
be the same apart from the summary nbtrack adds.
"""

from __future__ import annotations

import queue
import re
import time
from pathlib import Path
from typing import Any

import pytest

from nbtrack.client import Client
from nbtrack.models import RunQuery
from nbtrack.project import resolve_project

# (what, the cell untracked, the same cell tracked). The untracked twin keeps the
# %%track line as a comment: nbtrack does the same, so a traceback names the line
# the user sees in the cell.
TABLE = [
    (
        "streams",
        "print('out', flush=True)\nimport sys\nprint('err', file=sys.stderr, flush=True)\nprint('again')",
    ),
    (
        "display and echo",
        "from IPython.display import HTML, display\ndisplay(HTML('<b>bold</b>'))\ndisplay(42)\nx = 2\nx * 21",
    ),
    ("semicolon", "y = 3\ny * 2;"),
    ("echo after a comment", "y * 5  # the last line is a comment-ended expression"),
    ("top-level await", "import asyncio\nawait asyncio.sleep(0.01)\n'awaited'"),
    ("async for", "async def gen():\n    yield 1\n    yield 2\n[i async for i in gen()]"),
    ("shell lines", "!echo from-shell\nfiles = !echo captured\nfiles"),
    ("line magics", "%env NBTRACK_FIDELITY=1\nimport os\nos.environ['NBTRACK_FIDELITY']"),
    ("error", "def f():\n    raise ValueError('bad row 3')\nz = 1\nf()"),
    ("error in a coroutine", "async def g():\n    raise RuntimeError('in coroutine')\nawait g()"),
    ("syntax error", "x = (\n"),
    ("error while compiling", "def h():\n    return 1\nreturn 2"),
    ("indentation error", "if True:\nprint('no indent')"),
    ("keyboard interrupt", "raise KeyboardInterrupt"),
    ("display then error", "print('before', flush=True)\ndisplay('shown')\n1 / 0"),
]
STACKED = [
    ("%%time below", "%%time\ns = sum(range(1000))\ns", "%%track\n%%time\ns = sum(range(1000))\ns"),
    ("%%time above", "%%time\ns = sum(range(1000))\ns", "%%time\n%%track\ns = sum(range(1000))\ns"),
    ("%%time error", "%%time\n1 / 0", "%%track\n%%time\n1 / 0"),
]
SHOWN = ("stream", "display_data", "execute_result", "error", "update_display_data", "clear_output")


def _pairs() -> list[tuple[str, str, str]]:
    out = [
        (what, f"# %%track {i}\n{code}", f"%%track {i}\n{code}")
        for i, (what, code) in enumerate(TABLE)
    ]
    return out + STACKED


def _execute(kernel: Any, code: str, *, interrupt_on: str | None = None) -> dict[str, Any]:
    """Every output message of one execute request, and its reply."""
    kc = kernel.kc
    msg_id = kc.execute(code, store_history=True, allow_stdin=False, stop_on_error=False)
    outputs: list[dict[str, Any]] = []
    while True:
        try:
            m = kc.get_iopub_msg(timeout=120)
        except queue.Empty:
            raise AssertionError(f"no output for 120 s; so far {outputs}") from None
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        kind = m["msg_type"]
        if kind == "status" and m["content"]["execution_state"] == "idle":
            break
        if kind in SHOWN:
            outputs.append({"type": kind, **m["content"]})
            text = m["content"].get("text", "")
            if interrupt_on and interrupt_on in text:
                kernel.km.interrupt_kernel()
    while True:
        reply = kc.get_shell_msg(timeout=120)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    c = reply["content"]
    keep = ("status", "execution_count", "ename", "evalue", "traceback")
    return {"outputs": outputs, "reply": {k: c.get(k) for k in keep}}


def _is_summary(out: dict[str, Any]) -> bool:
    return out["type"] == "display_data" and out["data"].get("text/plain", "").startswith(
        "nbtrack run "
    )


_TIMES = re.compile(r"\d+(\.\d+)?(e[+-]?\d+)?\s*(ns|µs|μs|us|ms|s)\b")
# IPython names a cell's code after a hash of its source (and the kernel's pid).
_CELL_FILE = re.compile(r"(/[\w/.-]*ipykernel_\d+/)?\d+\.py")


def _cell_files(value: Any) -> Any:
    if isinstance(value, str):
        return _CELL_FILE.sub("CELL.py", value)
    if isinstance(value, list):
        return [_cell_files(v) for v in value]
    if isinstance(value, dict):
        return {k: _cell_files(v) for k, v in value.items()}
    return value


def _normalised(result: dict[str, Any]) -> dict[str, Any]:
    """Only what must differ: durations %%time prints, cell file names, stream chunking."""
    merged: list[dict[str, Any]] = []
    for out in result["outputs"]:
        out = dict(out)
        if out["type"] == "stream":
            out["text"] = _TIMES.sub("T", out["text"])
            if merged and merged[-1]["type"] == "stream" and merged[-1]["name"] == out["name"]:
                merged[-1] = {**merged[-1], "text": merged[-1]["text"] + out["text"]}
                continue
        merged.append(out)
    return _cell_files({"outputs": merged, "reply": result["reply"]})


@pytest.fixture
def twin_kernels(kernel_factory, project_dir):
    """Two kernels in the same state: one tracks its cells, the other does not."""
    untracked = kernel_factory()
    tracked = kernel_factory()
    untracked.ok("import nbtrack")
    tracked.ok("%load_ext nbtrack\nimport nbtrack")
    return untracked, tracked


def test_a_tracked_cell_sends_the_same_messages_as_the_cell_untracked(twin_kernels, project_dir):
    untracked, tracked = twin_kernels
    pairs = _pairs()
    for what, plain, with_track in pairs:
        want = _execute(untracked, plain)
        got = _execute(tracked, with_track)
        summaries = [o for o in got["outputs"] if _is_summary(o)]
        # Then nbtrack's summary is the last thing shown, once, and everything
        # before it is what the untracked cell showed.
        assert len(summaries) == 1 and got["outputs"][-1] is summaries[0], (what, got)
        got["outputs"].pop()
        assert _normalised(got) == _normalised(want), what

    # And each tracked cell is a run with the prompt number the user saw.
    runs = _settled_runs(project_dir, len(pairs))
    counts = sorted(r.execution_count for r in runs)
    assert counts == list(range(2, 2 + len(pairs)))
    by_count = {r.execution_count: r for r in runs}
    for n, (what, _, _) in enumerate(pairs, start=2):
        failed = what in {
            "error", "error in a coroutine", "syntax error", "error while compiling",
            "indentation error", "keyboard interrupt", "display then error", "%%time error",
        }  # fmt: skip
        assert by_count[n].status == ("failed" if failed else "finished"), what


def test_ast_node_interactivity_all_is_kept(twin_kernels):
    untracked, tracked = twin_kernels
    for k in twin_kernels:
        k.ok("get_ipython().ast_node_interactivity = 'all'")
    for cell, echoed in (("a = 1\na\na + 1\nprint('p')", ["1", "2"]), ("a\na + 2;", [])):
        want = _execute(untracked, "# %%track\n" + cell)
        got = _execute(tracked, "%%track\n" + cell)
        assert _is_summary(got["outputs"].pop())
        assert _normalised(got) == _normalised(want)
        results = [o["data"]["text/plain"] for o in got["outputs"] if o["type"] == "execute_result"]
        assert results == echoed


def test_an_interrupted_cell_shows_the_same_traceback_and_is_recorded_failed(
    twin_kernels, project_dir
):
    untracked, tracked = twin_kernels
    cell = "import time\nprint('sleeping')  # sent by the kernel's IO thread during the sleep\ntime.sleep(60)"
    want = _execute(untracked, "# %%track\n" + cell, interrupt_on="sleeping")
    got = _execute(tracked, "%%track\n" + cell, interrupt_on="sleeping")
    assert _is_summary(got["outputs"].pop())
    assert want["reply"]["ename"] == "KeyboardInterrupt"
    assert _normalised(got) == _normalised(want)
    (run,) = _settled_runs(project_dir, 1)
    assert run.status == "failed" and "KeyboardInterrupt" in run.error


def test_a_tracked_traceback_names_the_prompt_and_holds_no_nbtrack_frame(kernel, project_dir):
    reply = _execute(kernel, "%%track\nx = 1\n1 / 0")
    tb = _plain("\n".join(reply["reply"]["traceback"]))
    n = reply["reply"]["execution_count"]
    assert f"Cell In[{n}], line 3" in tb and "nbtrack" not in tb
    syntax = _execute(kernel, "%%track\nx = (\n")
    assert (
        len(syntax["reply"]["traceback"]) == 1 and "nbtrack" not in syntax["reply"]["traceback"][0]
    )
    # ... and the failed run's error names the cell as the traceback does, not the
    # temporary file IPython compiled it as
    m = syntax["reply"]["execution_count"]
    runs = _settled_runs(project_dir, 2)
    error = next(r.error for r in runs if "SyntaxError" in (r.error or ""))
    assert f"Cell In[{m}], line 2" in error and "ipykernel" not in error


def test_top_level_await_runs_and_records_the_run(kernel, project_dir):
    reply = _execute(kernel, "%%track aw\nimport asyncio\nlr = 0.5\nawait asyncio.sleep(0)\nlr * 2")
    results = [o["data"]["text/plain"] for o in reply["outputs"] if o["type"] == "execute_result"]
    assert reply["reply"]["status"] == "ok" and results == ["1.0"]
    (run,) = _settled_runs(project_dir, 1)
    assert run.name == "aw" and run.status == "finished" and run.params == {"lr": 0.5}


def test_inside_capture_the_run_is_recorded_and_its_summary_captured(kernel, project_dir):
    reply = _execute(kernel, "%%capture out\n%%track cap\nv = 7\nprint('hidden')")
    assert reply["reply"]["status"] == "ok" and reply["outputs"] == []
    shown = _execute(kernel, "print(out.stdout.strip(), len(out.outputs), v)")
    assert shown["outputs"][0]["text"].strip() == "hidden 1 7"
    (run,) = _settled_runs(project_dir, 1)
    assert run.name == "cap" and run.status == "finished" and run.params == {"v": 7}
    assert run.execution_count == reply["reply"]["execution_count"]


def test_a_tracked_cell_inside_a_running_cell_runs_through_the_magic(kernel, project_dir):
    reply = _execute(kernel, "get_ipython().run_cell('%%track inner\\nw = 3\\nw + 1')")
    texts = [o["data"]["text/plain"] for o in reply["outputs"] if o["type"] == "execute_result"]
    assert "4" in texts
    (run,) = _settled_runs(project_dir, 1)
    assert run.name == "inner" and run.status == "finished"
    assert run.execution_count == reply["reply"]["execution_count"]


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _settled_runs(project: Path, n: int) -> list[Any]:
    """The cell runs once ``n`` of them reached the store and none is still running."""
    client = Client(resolve_project(project))
    deadline = time.monotonic() + 30
    seen: Any = None
    while time.monotonic() < deadline:
        if client.project.db_path.exists():
            runs = client.list_runs(RunQuery(limit=1000)).runs
            seen = [(r.short_id, r.status) for r in runs]
            if len(runs) >= n and all(r.status != "running" for r in runs):
                return runs
        time.sleep(0.1)
    raise AssertionError(f"expected {n} stored runs, last saw {seen}")


def test_below_or_above_time_the_body_s_reads_and_literals_are_parameters(kernel, project_dir):
    """Found by a new user's fifth trial: with ``%%time`` stacked on ``%%track`` (either
    order) the run had no parameter at all: nbtrack read IPython's code for the cell,
    one ``run_cell_magic('time', ...)`` call, instead of the body it times."""
    kernel.ok("seed = 7")
    kernel.ok("%%time\n%%track above\nz = 1\nx = seed * 2")
    kernel.ok("%%track below\n%%time\nz = 2\nx = seed * 3")
    runs = {r.name: r for r in _settled_runs(project_dir, 2)}
    full = Client(resolve_project(project_dir)).get_runs([r.run_id for r in runs.values()])
    got = {r.name: (r.params, r.param_sources) for r in full}
    assert got == {
        "above": ({"seed": 7, "z": 1}, {"seed": "upstream", "z": "auto"}),
        "below": ({"seed": 7, "z": 2}, {"seed": "upstream", "z": "auto"}),
    }
