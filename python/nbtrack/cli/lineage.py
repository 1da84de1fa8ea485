"""``nbtrack lineage``: where a run's inputs came from and where its outputs went.

The panel draws the same lineage as a graph (``GET runs/{ref}/lineage``); here it is
two indented trees: upstream, each file or kernel value the run read with the runs
that wrote it (and, one level further, what those runs read); downstream, each file
the run wrote with the runs that read it, and the model versions made of it.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from typing import Any

from ..shown import escaped
from .output import emit_json
from .parser import at_least, open_client

Row = dict[str, Any]


class _Lineage:
    """The lineage dict of ``Client.run_lineage``, indexed for the two walks."""

    def __init__(self, lin: dict[str, Any]) -> None:
        self.root: str = lin["run_id"]
        self.depth: int = lin["depth"]
        self.runs = {r["run_id"]: r for r in lin["runs"]}
        self.more: dict[str, int] = lin.get("more", {})
        self.rows: dict[tuple[str, str], list[Row]] = defaultdict(list)  # (run, role)
        self.by_content: dict[tuple[str, str], list[Row]] = defaultdict(list)  # (hash, role)
        for row in lin["data"]:
            self.rows[(row["run_id"], row["role"])].append(row)
            if row["hash"]:
                self.by_content[(row["hash"], row["role"])].append(row)
        self.values = lin["values"]
        self.models = lin["models"]

    def label(self, run_id: str) -> str:
        run = self.runs.get(run_id)
        if run is None:
            return run_id[:8]
        where = f" in {run['notebook_path']}" if run.get("notebook_path") else ""
        status = "" if run["status"] == "finished" else f", {run['status']}"
        return f"{run['name'] or run['kind']} {run_id[:8]} ({run['kind']}{status}{where})"

    def walk(
        self, run_id: str, upstream: bool, indent: str, left: int, seen: set[str]
    ) -> list[str]:
        """The lines of one side of ``run_id``, ``left`` levels deep."""
        mine, theirs, arrow = ("input", "output", "<-") if upstream else ("output", "input", "->")
        lines: list[str] = []
        for row in self.rows[(run_id, mine)]:
            others = sorted(
                {r["run_id"] for r in self.by_content[(row["hash"], theirs)]} - {run_id},
                key=lambda rid: str(self.runs.get(rid, {}).get("started_at")),
            )
            text = f"{indent}{escaped(row['path'])} @{_short(row['hash'])}"
            if others:
                text += f" {arrow} " + ", ".join(self.label(r) for r in others)
            elif upstream:
                text += "  (no tracked run wrote these bytes)"
            extra = self.more.get(row["hash"] or "", 0)
            lines.append(text + (f", and {extra} more run(s)" if extra > 0 else ""))
            lines += self._deeper(others, upstream, indent, left, seen)
        near, far = ("target", "source") if upstream else ("source", "target")
        for value in self.values:
            if value[near] == run_id:
                other = value[far]
                lines.append(f"{indent}value {value['name']} {arrow} {self.label(other)}")
                lines += self._deeper([other], upstream, indent, left, seen)
        if not upstream:
            for m in self.models:
                if m["run_id"] == run_id:
                    aliases = f" @{', @'.join(m['aliases'])}" if m["aliases"] else ""
                    lines.append(f"{indent}model {m['name']} v{m['version']}{aliases}")
        return lines

    def _deeper(
        self, others: list[str], upstream: bool, indent: str, left: int, seen: set[str]
    ) -> list[str]:
        lines: list[str] = []
        for other in others:
            if left > 1 and other not in seen:
                seen.add(other)
                lines += self.walk(other, upstream, indent + "    ", left - 1, seen)
        return lines


def _short(digest: str | None) -> str:
    if not digest:
        return "?"
    return digest.partition(":")[2][:8] or digest[:8]


def render(lin: dict[str, Any]) -> str:
    """The two trees of a run's lineage as text."""
    tree = _Lineage(lin)
    root = tree.root
    out = [f"lineage of {tree.label(root)}, {tree.depth} run(s) away at most"]
    for upstream, title, empty in (
        (True, "read (<- the runs that wrote it):", "read no tracked file or kernel value"),
        (False, "wrote (-> the runs that read it):", "wrote no tracked file"),
    ):
        lines = tree.walk(root, upstream, "  ", tree.depth, {root})
        out += ["", title, *lines] if lines else ["", empty]
    return "\n".join(out) + "\n"


def cmd_lineage(args: argparse.Namespace) -> int:
    lin = open_client(args).run_lineage(args.run, depth=args.depth, fanout=args.fanout)
    if args.json:
        emit_json(lin)
    else:
        sys.stdout.write(render(lin))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "lineage",
        help="the runs that made a run's inputs and used its outputs",
        description=(
            "What a run read and who wrote it, what it wrote and who read it, by content "
            "hash: the same bytes written by one run and read by another link them, "
            "whatever the file is called. Kernel values passed from one tracked cell to "
            "another and model versions registered from its outputs are shown too."
        ),
    )
    p.add_argument("run", help="run id, a unique prefix of one, or 'last'")
    p.add_argument("--depth", type=int, default=2, help="runs away to follow (1-5, default 2)")
    p.add_argument(
        "--fanout", type=at_least(1), default=20, help="runs shown per file (default 20)"
    )
    p.add_argument(
        "--json", action="store_true", help="the lineage as JSON (as the REST API gives it)"
    )
    p.set_defaults(func=cmd_lineage)
