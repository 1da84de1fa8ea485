"""A build hook that runs before the JupyterLab extension is built (pyproject.toml).

Building nbtrack from source compiles the panel with Node.js (``jlpm build:prod``).
Without Node.js that build fails deep inside yarn with a long traceback; this hook
says it in one line first, with what to install. A tree that holds the built
extension already (an sdist, a second build) needs no Node.js and is let through.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

NODE_MIN = 18
BUILT = Path("python/nbtrack/labextension/static/style.js")


def node_problem() -> str | None:
    """Why Node.js cannot build the extension here, or None when it can."""
    node = shutil.which("node")
    if node is None:
        return "no `node` on PATH"
    try:
        version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"`{node} --version` failed"
    match = re.match(r"v?(\d+)", version)
    if not match or int(match.group(1)) < NODE_MIN:
        return f"{node} is {version or 'of an unknown version'}"
    return None


class NodeCheckHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if (Path(self.root) / BUILT).exists():
            return
        problem = node_problem()
        if problem:
            # SystemExit, not an exception: pip then shows this one line, not a traceback.
            sys.exit(
                f"nbtrack: building the JupyterLab extension from source needs Node.js >= "
                f"{NODE_MIN} ({problem}): install it (https://nodejs.org), or install the "
                "prebuilt wheel instead (pip install nbtrack, or a wheel from `make dist`)"
            )
