"""The kernel and environment of a re-run: the recorded kernelspec, and on request a
virtual environment holding the recorded package versions.

``--env recorded`` builds, with ``uv``, a virtual environment *layered* on the one
nbtrack runs in: the packages whose recorded version differs from (or is missing in)
the current environment are installed into it, exactly at their recorded versions and
without their dependencies (those are recorded too); everything else, nbtrack and the
kernel included, is found through a ``.pth`` file pointing at the current
environment's site-packages, after the environment's own. Built once per (recorded
environment, base environment) in ``NBTRACK_ENV_CACHE``, in a temporary folder renamed
into place at the end: a failed build leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import TYPE_CHECKING

from ..exceptions import PipelineError, UsageError

if TYPE_CHECKING:
    from ..models import Environment

MARKER = "nbtrack-env.json"


def available_kernels() -> list[str]:
    """The kernelspec names Jupyter finds here (``JUPYTER_PATH`` included)."""
    from jupyter_client.kernelspec import KernelSpecManager

    return sorted(KernelSpecManager().find_kernel_specs())


def choose_kernel(requested: str | None, recorded: str | None, default: str) -> tuple[str, str]:
    """``(kernel name, why)``: ``--kernel``, else the recorded one when it exists here."""
    names = available_kernels()
    if requested is not None:
        check_kernel(requested, names)
        return requested, "asked for (--kernel)"
    if recorded and recorded in names:
        return recorded, "the kernel the run was made in"
    if recorded:
        return default, f"the recorded kernel {recorded!r} is not installed here"
    return default, "the run recorded no kernel"


def check_kernel(name: str, names: list[str] | None = None) -> None:
    """Raise ``UsageError`` listing the kernels Jupyter knows when ``name`` is not one:
    before anything executes (``--kernel`` of rerun, sweep, repro)."""
    names = available_kernels() if names is None else names
    if name not in names:
        raise UsageError(f"no kernel named {name!r} here; available: {', '.join(names) or 'none'}")


def _differing(recorded: Environment, base: Environment) -> dict[str, str]:
    return {
        name: version
        for name, version in sorted(recorded.packages.items())
        if base.packages.get(name) != version
    }


def _python_of(folder: Path) -> Path:
    return folder / "bin" / "python"


def _uv() -> str:
    from uv import find_uv_bin

    return str(find_uv_bin())


def recorded_python(recorded: Environment, base: Environment) -> tuple[str, bool]:
    """The interpreter of an environment with ``recorded``'s package versions, and whether
    it was built now (False: reused from the cache)."""
    from .. import settings

    wanted = _differing(recorded, base)
    key_text = json.dumps([recorded.env_id, sys.executable, base.env_id, wanted])
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    cache = settings.env_cache()
    target = cache / key
    if (target / MARKER).is_file():
        return str(_python_of(target)), False
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".building-{key}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _build(tmp, wanted)
        (tmp / MARKER).write_text(json.dumps({"env_id": recorded.env_id, "installed": wanted}))
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / MARKER).is_file():  # not another process that built it first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(_python_of(target)), True


def _build(folder: Path, wanted: dict[str, str]) -> None:
    uv = _uv()
    _run([uv, "venv", "--quiet", "--python", sys.executable, str(folder)], "create the venv")
    purelib = Path(
        sysconfig.get_path("purelib", vars={"base": str(folder), "platbase": str(folder)})
    )
    purelib.mkdir(parents=True, exist_ok=True)
    # After the environment's own site-packages: its versions win over the base's.
    base_dirs = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    lines = "".join(f"import site; site.addsitedir({d!r})\n" for d in base_dirs)
    (purelib / "zz-nbtrack-base.pth").write_text(lines)
    if not wanted:
        return
    pins = [f"{name}=={version}" for name, version in wanted.items()]
    cmd = [uv, "pip", "install", "--quiet", "--no-deps", "--python", str(_python_of(folder))]
    try:
        _run([*cmd, *pins], "install the recorded packages")
    except PipelineError as exc:
        text = str(exc).lower()
        named = [p for p in pins if p.split("==")[0].lower() in text] or pins
        raise PipelineError(
            f"cannot build the recorded environment: {', '.join(named)} could not be "
            f"installed ({exc}); nothing was kept"
        ) from None


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
        raise PipelineError(f"uv could not {what}: {' '.join(lines[:6]) or done.returncode}")
