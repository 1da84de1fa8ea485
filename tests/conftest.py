"""Shared fixtures: a fresh project folder, and a real kernel to run cells in."""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

VENV_BIN = str(Path(sys.executable).parent)


@pytest.fixture(scope="session", autouse=True)
def _no_store_above_the_tests(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A project is found by walking up from its folder, so a stray ``.nbtrack/`` above
    the temporary folders (say ``/tmp/.nbtrack``) would quietly become every test's
    store. Stop before any test runs, naming it."""
    base = tmp_path_factory.getbasetemp().resolve()
    stray = next((d / ".nbtrack" for d in base.parents if (d / ".nbtrack").is_dir()), None)
    if stray is not None:
        pytest.exit(f"{stray} would be every test's store; move it away (or use --basetemp)", 3)


@pytest.fixture(scope="session", autouse=True)
def _no_ingestion_process_left(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each store's ingestion process (``nbtrack.ingestd``) exits on its own once idle:
    after the session, none started for this session's projects may be left running."""
    yield
    import psutil

    from nbtrack.ingestd import IDLE_EXIT

    base = str(tmp_path_factory.getbasetemp().resolve()) + os.sep  # not pytest-10 for pytest-1
    deadline = time.monotonic() + IDLE_EXIT + 10
    while True:
        left = [p for p in ingestion_processes() if base in " ".join(p.info["cmdline"])]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for p in left:
        with contextlib.suppress(psutil.Error):
            p.kill()
    assert not left, f"ingestion processes outlived their tests: {left}"


def ingestion_processes() -> list[Any]:
    """The ``nbtrack.ingestd`` processes of this machine (psutil processes)."""
    import psutil

    found = []
    for p in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            alive = p.status() != psutil.STATUS_ZOMBIE
            if "nbtrack.ingestd" in (p.info["cmdline"] or []) and alive:
                found.append(p)
    return found


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder as the current folder, with no store chosen by env."""
    monkeypatch.delenv("NBTRACK_STORE", raising=False)
    monkeypatch.delenv("NBTRACK_PARENT_RUN", raising=False)
    monkeypatch.delenv("NBTRACK_PARAMS", raising=False)
    monkeypatch.delenv("NBTRACK_NOTEBOOK", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def pipe_project(project_dir: Path) -> Path:
    """A project holding the training notebook (tests/notebooks/pipe_train.ipynb) and its
    data, with an empty store."""
    import shutil

    shutil.copy(Path(__file__).parent / "notebooks" / "pipe_train.ipynb", project_dir)
    (project_dir / "pipe_data.csv").write_text("1\n2\n3\n")
    (project_dir / ".nbtrack").mkdir()
    return project_dir


def kernel_env(**extra: str) -> dict[str, str]:
    # Not pytest's own variable either: under it ipykernel leaves the process's output
    # files alone, where a user's kernel keeps a copy of each (a runner's log among them).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NBTRACK_", "JPY_")) and k != "PYTEST_CURRENT_TEST"
    }
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env


@dataclass
class Reply:
    """What one execute request produced."""

    status: str
    outputs: list[dict[str, Any]] = field(default_factory=list)
    ename: str | None = None
    evalue: str | None = None

    @property
    def text(self) -> str:
        """Everything printed or displayed as text/plain, and the error, joined."""
        parts = []
        for out in self.outputs:
            if out["msg_type"] == "stream":
                parts.append(out["content"]["text"])
            elif out["msg_type"] in ("display_data", "execute_result"):
                parts.append(out["content"]["data"].get("text/plain", ""))
            elif out["msg_type"] == "error":
                parts.append("\n".join(out["content"]["traceback"]))
        return "\n".join(parts)

    def mimebundles(self) -> list[dict[str, Any]]:
        return [
            o["content"]["data"]
            for o in self.outputs
            if o["msg_type"] in ("display_data", "execute_result")
        ]


class Kernel:
    """A real IPython kernel (jupyter_client), in a given folder, with a given env."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=str(cwd), env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str, *, cell_id: str | None = None, timeout: float = 120) -> Reply:
        """Execute ``code`` as a frontend would (with JupyterLab's ``cellId`` if given)."""
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": False,
        }
        msg = self.kc.session.msg(
            "execute_request", content, metadata={"cellId": cell_id} if cell_id else {}
        )
        self.kc.shell_channel.send(msg)
        msg_id = msg["header"]["msg_id"]
        outputs: list[dict[str, Any]] = []
        while True:
            try:
                m = self.kc.get_iopub_msg(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"no output from the kernel for {timeout} s") from None
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                break
            if m["msg_type"] in ("stream", "display_data", "execute_result", "error"):
                outputs.append(m)
        while True:  # skip replies to earlier requests (wait_for_ready's kernel_info)
            reply = self.kc.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        c = reply["content"]
        return Reply(c["status"], outputs, c.get("ename"), c.get("evalue"))

    def ok(self, code: str, **kw: Any) -> Reply:
        r = self.run(code, **kw)
        assert r.status == "ok", r.text
        return r

    def shutdown(self) -> None:
        """Kill the kernel at once (SIGKILL): what a crash looks like."""
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)

    def close(self) -> None:
        """Shut the kernel down as JupyterLab does: a shutdown request, and time for the
        kernel's exit handlers (which spool the facts still being gathered) to run."""
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)


@pytest.fixture
def kernel_factory(project_dir: Path):
    started: list[Kernel] = []

    def make(cwd: Path | None = None, **env: str) -> Kernel:
        k = Kernel(cwd or project_dir, kernel_env(**env))
        started.append(k)
        return k

    yield make
    for k in started:
        k.shutdown()


@pytest.fixture
def kernel(kernel_factory) -> Kernel:
    k = kernel_factory()
    k.ok("%load_ext nbtrack\nimport nbtrack")
    return k


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The ``nbtrack`` command as a user types it."""
    return subprocess.run(
        [sys.executable, "-m", "nbtrack", *args],
        cwd=cwd,
        env=env or kernel_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
