"""``nbtrack binder RUN``: Binder files pinning the environment a run recorded."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from .output import emit_json
from .parser import open_client


def register(sub: Any) -> None:
    """Add the ``binder`` verb to the ``nbtrack`` parser."""
    parser = sub.add_parser(
        "binder",
        help="write binder/ files pinning the Python and packages recorded with a run",
        description=(
            "Write runtime.txt and requirements.txt pinning the environment recorded with "
            "RUN, so the repository launches on mybinder.org with the same Python and "
            "package versions. Packages that pip cannot install by name and version "
            "(editable or local installs, local version labels) are left out and listed."
        ),
    )
    parser.add_argument("run", metavar="RUN", help="run id, unique prefix, or 'last'")
    parser.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        help="folder to write (default: binder/ at the git root of the project, else of the project)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument("--json", action="store_true", help="print what was written as JSON")
    parser.set_defaults(func=run_binder)


def run_binder(args: argparse.Namespace) -> int:
    """Write the Binder files of ``args.run`` and say what was written and left out."""
    from ..binder import binder_spec, binder_url, git_toplevel, write_binder

    client = open_client(args)
    run = client.get_run(args.run)
    spec = binder_spec(run)
    root = client.project.root
    repo_root = git_toplevel(root) or root
    out_dir = args.out if args.out is not None else repo_root / "binder"
    written = write_binder(spec, out_dir, force=args.force)

    notebook = None
    if spec.notebook_path:
        try:
            notebook = (root / spec.notebook_path).resolve().relative_to(repo_root.resolve())
        except ValueError:
            notebook = None
    url = binder_url(repo_root, notebook.as_posix() if notebook else None)

    if args.json:
        emit_json({**spec.to_dict(), "written": [str(p) for p in written], "binder_url": url})
        return 0
    for path in written:
        shown = os.path.relpath(path) if path.resolve().is_relative_to(Path.cwd()) else str(path)
        if path.name == "requirements.txt":
            detail = f"{len(spec.requirements)} pinned packages"
        else:
            detail = f"python-{spec.python}"
        print(f"wrote {shown} ({detail})")
    if spec.skipped:
        print(f"left out {len(spec.skipped)} package(s) pip cannot install by name and version:")
        for skipped in spec.skipped:
            print(f"  {skipped.name} {skipped.version}: {skipped.reason}")
    for warning in spec.warnings:
        print(f"warning: {warning}")
    if url:
        print(f"commit and push {out_dir.name}/, then launch: {url}")
    else:
        print(
            f"commit {out_dir.name}/ with your notebooks and push to GitHub; mybinder.org "
            "then builds this environment"
        )
    return 0
