"""``nbtrack doctor``: check the store, the spools and the cache, and repair what is safe."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .output import emit_json, emit_table
from .parser import open_client


def cmd_doctor(args: argparse.Namespace) -> int:
    from ..doctor import examine

    report = examine(open_client(args), repair=args.repair)
    if args.json:
        emit_json(report.to_dict())
    else:
        rows = [[f.area, f.check, f.status, f.detail] for f in report.findings]
        emit_table(["area", "check", "status", "detail"], rows, max_width=200)
        if not report.healthy:
            hint = "" if args.repair else "; `nbtrack doctor --repair` fixes what is safe to fix"
            sys.stderr.write(f"nbtrack: problems remain{hint}\n")
    return 0 if report.healthy else 1


def register(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check the store, the spools and the cache; --repair fixes")
    p.add_argument(
        "--repair",
        action="store_true",
        help="fix what is safe to fix (nothing a user may need is deleted)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable JSON")
    p.set_defaults(func=cmd_doctor)
