"""Moving an alias survives a SIGKILL at any moment and a full disk: old or new, never half.

``nbtrack models alias`` runs as a real process, killed with SIGKILL at seeded random
moments from its start to a little past its usual end; after each kill the store must
open, the alias must name the old or the new version, and its history must agree with
it (one move more exactly when it moved). A full disk is a real 24 MiB tmpfs filled
to the last page (the machine runs tests as root, as tests/test_crash.py does).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nbtrack
from conftest import kernel_env, run_cli
from model_helpers import fitted, make_client, tracked
from nbtrack.registry.core import Registry
from nbtrack.registry.values import AliasMove
from test_crash import small_disk

__all__ = ["small_disk"]  # the fixture (a real tmpfs), from the kernel crash tests

TRIALS = 20
SEED = 1112


def alias_state(root: Path) -> tuple[int, list[AliasMove]]:
    """Where churn@champion points and its history, read afresh (the store must open)."""
    reg = Registry(make_client(root))
    return reg.get("churn@champion").version, reg.history("churn", "champion")


def two_versions(root: Path) -> None:
    client = make_client(root)
    with tracked(client):
        for c in (0.1, 1.0):
            nbtrack.log_model(fitted(C=c), "churn")
    Registry(client).set_alias("churn", 1, "champion")


def nbtrack_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "nbtrack", *args]


def quickest(run: Callable[[], None], times: int = 3) -> float:
    """The shortest of ``times`` timed calls of ``run``: how long it takes here when
    nothing holds it up. A single timing can catch a busy moment of a shared machine;
    the kills, spread up to a little past it, then mostly land after the end."""
    spans = []
    for _ in range(times):
        start = time.monotonic()
        run()
        spans.append(time.monotonic() - start)
    return min(spans)


def killed_at_random(argv: list[str], cwd: Path, rng: random.Random, span: float) -> bool:
    """Run ``argv``; SIGKILL it at a random moment in [0, 1.1 span]; True if it was killed."""
    proc = subprocess.Popen(
        argv, cwd=cwd, env=kernel_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        proc.wait(timeout=rng.uniform(0, 1.1 * span))
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
        return True
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.returncode == 0, err
    return False


def test_sigkill_at_random_moments_of_an_alias_move_leaves_old_or_new(project_dir: Path) -> None:
    # Given: a model with two versions, champion on version 1
    two_versions(project_dir)
    targets = iter(("2", "1", "2"))

    def move() -> None:
        done = run_cli("models", "alias", "churn", next(targets), "champion", cwd=project_dir)
        assert done.returncode == 0, done.stderr

    span = quickest(move)  # how long one move takes here, start to exit
    rng = random.Random(SEED)
    killed = 0
    for _ in range(TRIALS):
        before, history = alias_state(project_dir)
        target = 3 - before
        # When: a move to the other version is killed at a random moment
        argv = nbtrack_command("models", "alias", "churn", str(target), "champion")
        killed += killed_at_random(argv, project_dir, rng, span)
        # Then: the store opens, the alias is the old or the new version, never anything
        # else, and its history agrees with it: one move more exactly when it moved
        after, moves = alias_state(project_dir)
        assert after in (before, target)
        assert [m.seq for m in moves] == list(range(1, len(moves) + 1))
        assert moves[-1].to_version == after
        assert len(moves) - len(history) == (after == target)
    assert killed >= TRIALS // 2, f"only {killed} of {TRIALS} moves were killed before their end"
    # and a move after all that goes through and is shown
    out = run_cli("models", "alias", "churn", "1", "champion", cwd=project_dir)
    assert out.returncode == 0, out.stderr
    assert alias_state(project_dir)[0] == 1


def fill(folder: Path) -> Path:
    """Fill the filesystem to its last page; the filler file, to remove for space."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    fh.write(bytes(chunk))
            except OSError:
                pass
    return filler


def test_an_alias_move_on_a_full_disk_fails_in_one_line_and_changes_nothing(
    small_disk: Path,
) -> None:
    # Given: a registry on a filesystem with no space left
    two_versions(small_disk)
    before, history = alias_state(small_disk)
    filler = fill(small_disk)
    # When: the alias is moved
    out = run_cli("models", "alias", "churn", "2", "champion", cwd=small_disk)
    # Then: the command says so in one line, and nothing moved
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "space" in out.stderr.lower()
    filler.unlink()
    after, moves = alias_state(small_disk)
    assert (after, len(moves)) == (before, len(history))
    # When: space came back, then the same move goes through
    assert run_cli("models", "alias", "churn", "2", "champion", cwd=small_disk).returncode == 0
    assert alias_state(small_disk)[0] == 2
