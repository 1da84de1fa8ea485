"""``nbtrack checkout | gc | push | pull``: data versions from the shell."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ..exceptions import UsageError
from .output import emit_json, emit_table
from .parser import open_client

EXIT_INCOMPLETE = 1


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _checkout_rows(report: Any) -> list[list[str]]:
    """One row per file, except that a folder's good files fold into one row."""
    rows: list[list[str]] = []
    folder_rows: dict[str, list[str]] = {}
    folder_counts: dict[str, dict[str, int]] = {}
    for item in report.items:
        if item.folder is None or not item.ok:
            rows.append([item.status, item.path, item.detail])
            continue
        if item.folder not in folder_rows:
            folder_rows[item.folder] = ["", item.folder.rstrip("/") + "/", ""]
            rows.append(folder_rows[item.folder])
            folder_counts[item.folder] = {}
        counts = folder_counts[item.folder]
        counts[item.status] = counts.get(item.status, 0) + 1
    for folder, row in folder_rows.items():
        counts = folder_counts[folder]
        row[0] = "restored" if counts.get("restored") else "unchanged"
        row[2] = ", ".join(f"{n} file(s) {status}" for status, n in sorted(counts.items()))
    return rows


def cmd_checkout(args: argparse.Namespace) -> int:
    from ..checkout import MODIFIED, checkout

    role = "input" if args.inputs else "output" if args.outputs else None
    report = checkout(
        open_client(args), args.run, args.paths, role=role, to=args.to, force=args.force
    )
    if args.json:
        emit_json(report.to_dict())
    else:
        emit_table(["status", "path", "detail"], _checkout_rows(report), max_width=80)
        counts = ", ".join(f"{n} {status}" for status, n in sorted(report.counts().items()))
        sys.stdout.write(f"run {report.run_id[:8]}: {counts or 'no data versions'}\n")
    if not report.ok:
        modified = any(i.status == MODIFIED for i in report.problems)
        # --force replaces files, never a folder in a file's place: say so, not "--force"
        hint = (
            "; move or remove the folder in the way"
            if args.force
            else "; --force overwrites the modified ones"
        )
        print(
            f"nbtrack: {len(report.problems)} path(s) could not be restored (see above)"
            + (hint if modified else ""),
            file=sys.stderr,
        )
        return EXIT_INCOMPLETE
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from ..pipelines.scratch import scratch_copies

    client = open_client(args)
    result = client.gc(
        keep_last=args.keep_last,
        older_than_days=args.older_than,
        dry_run=args.dry_run,
    )
    copies = scratch_copies(client, remove=args.reruns and not args.dry_run)
    if args.json:
        emit_json({**result.to_dict(), "reruns": copies.to_dict()})
        return 0
    verb = "would remove" if args.dry_run else "removed"
    for digest, size in result.removed:
        sys.stdout.write(f"{verb} {digest}  {_human_bytes(size)}\n")
    sys.stdout.write(
        f"{verb} {len(result.removed)} blob(s), {_human_bytes(result.removed_bytes)}; "
        f"kept {result.kept_blobs} blob(s), {_human_bytes(result.kept_bytes)}"
        + (
            f" ({result.kept_recent_orphans} unreferenced but younger than 10 minutes)"
            if result.kept_recent_orphans
            else ""
        )
        + "\n"
    )
    _report_scratch(copies, verb if args.reruns else "")
    return 0


def _report_scratch(copies: Any, verb: str) -> None:
    """The re-runs' scratch copies: what ``--reruns`` removed, or that they are there."""
    n, size = len(copies.removable), _human_bytes(copies.removable_bytes)
    if verb:
        for rerun_id, nbytes in copies.removable:
            sys.stdout.write(f"{verb} .nbtrack/reruns/{rerun_id}  {_human_bytes(nbytes)}\n")
        sys.stdout.write(f"{verb} {n} re-run scratch cop{'y' if n == 1 else 'ies'}, {size}")
        if copies.kept:
            sys.stdout.write(
                f"; kept {len(copies.kept)} (re-running, or changed in the last 10 minutes)"
            )
        sys.stdout.write("\n")
    elif n:
        sys.stdout.write(
            f"{n} re-run scratch cop{'y' if n == 1 else 'ies'} in .nbtrack/reruns/ ({size}); "
            "`nbtrack gc --reruns` removes them\n"
        )


def _transfer_out(result: Any, verb: str, as_json: bool) -> int:
    if as_json:
        emit_json(result.to_dict())
    else:
        sys.stdout.write(
            f"{verb} {len(result.runs)} run(s); copied {len(result.blobs_copied)} blob(s) "
            f"({_human_bytes(result.bytes_copied)}), {result.blobs_present} already there"
            + (f"; model versions: {', '.join(result.models)}" if result.models else "")
            + "\n"
        )
        for digest in result.blobs_missing:
            sys.stdout.write(f"missing {digest} (never cached, or pruned)\n")
        for digest in result.blobs_corrupt:
            sys.stdout.write(f"corrupt {digest} (bytes do not match the hash; not kept)\n")
    return 0 if result.ok else EXIT_INCOMPLETE


def cmd_push(args: argparse.Namespace) -> int:
    from ..remotes import push

    return _transfer_out(push(open_client(args), args.remote, args.runs), "pushed", args.json)


def cmd_pull(args: argparse.Namespace) -> int:
    from ..remotes import pull

    return _transfer_out(pull(open_client(args), args.remote, args.runs), "pulled", args.json)


def _non_negative(convert: Callable[[str], float]) -> Callable[[str], float]:
    """An argparse type: a number >= 0 read with ``convert`` (int or float)."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise UsageError(f"not a number: {text!r}") from None
        if value < 0:
            raise UsageError(f"needs a number >= 0, not {value}")
        return value

    return parse


def register(sub: Any) -> None:
    """Add the ``checkout``, ``gc``, ``push`` and ``pull`` verbs to the ``nbtrack`` parser."""
    p = sub.add_parser("checkout", help="restore the exact data files a run read or wrote")
    p.add_argument("run", help="run id, unique prefix, or 'last'")
    p.add_argument("paths", nargs="*", metavar="PATH", help="only these paths (default: all)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--inputs", action="store_true", help="only what the run read")
    which.add_argument("--outputs", action="store_true", help="only what the run wrote")
    p.add_argument("--to", metavar="DIR", help="restore under DIR instead of in place")
    p.add_argument(
        "--force", action="store_true", help="overwrite files that match no recorded version"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_checkout)

    p = sub.add_parser("gc", help="prune cached data no kept run references")
    p.add_argument(
        "--keep-last",
        type=_non_negative(int),
        metavar="N",
        help="keep the data of the newest N runs",
    )
    p.add_argument(
        "--older-than",
        type=_non_negative(float),
        metavar="DAYS",
        help="prune the data of runs started more than DAYS ago",
    )
    p.add_argument(
        "--reruns",
        action="store_true",
        help="also remove the scratch copies re-runs executed in (.nbtrack/reruns/), "
        "except a re-run still running or changed in the last 10 minutes",
    )
    p.add_argument("--dry-run", action="store_true", help="only show what would be removed")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_gc)

    for verb, func, helptext in (
        ("push", cmd_push, "copy runs and their cached data to a remote (any fsspec URL)"),
        ("pull", cmd_pull, "copy runs and their cached data from a remote"),
    ):
        p = sub.add_parser(verb, help=helptext)
        p.add_argument("remote", metavar="REMOTE_URL", help="a folder, s3://bucket/prefix, ...")
        p.add_argument("runs", nargs="*", metavar="RUN", help="only these runs (default: all)")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=func)
