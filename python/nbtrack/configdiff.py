"""The data diff of a settings file: which keys of a YAML, JSON or TOML config changed.

A notebook that reads ``config.yaml`` (``yaml.safe_load(open('config.yaml'))``) records
the file as an input, by its hash; when it changes, ``nbtrack diff`` says which
settings moved (``lr: 0.1 → 0.5``), as it says which rows and columns of a table did.
Only small files (``MAX_BYTES``) whose both versions parse to a mapping are compared;
anything else keeps the hash-only answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MAX_BYTES = 256 << 10
MAX_LINES = 12  # changed keys printed; the rest counted
_FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml"}


def config_format(path: str) -> str | None:
    """``"yaml"``, ``"json"`` or ``"toml"`` from a file name; None otherwise."""
    return _FORMATS.get(Path(path).suffix.lower())


def _load(path: Path, fmt: str) -> dict[str, Any] | None:
    try:
        if path.stat().st_size > MAX_BYTES:
            return None
        text = path.read_text(encoding="utf-8")
        if fmt == "json":
            value = json.loads(text)
        elif fmt == "toml":
            import tomllib

            value = tomllib.loads(text)
        else:
            import yaml

            value = yaml.safe_load(text)
    except Exception:  # unreadable, not this format after all, no yaml: no key diff
        return None
    return value if isinstance(value, dict) else None


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_leaves(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: value}


def _text(value: Any) -> str:
    return "—" if value is _ABSENT else json.dumps(value, default=str, ensure_ascii=False)


_ABSENT = object()


def compare_configs(a: Path, b: Path, fmt: str) -> dict[str, Any] | None:
    """The changed keys of two versions of a settings file, or None when either does not
    parse to a mapping. ``summary`` holds one line per changed key (``model.depth: 4 →
    6``, ``—`` for a key one side lacks), the first ``MAX_LINES`` of them.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.json").write_text('{"lr": 0.1, "m": {"depth": 4}}')
    >>> _ = (d / "b.json").write_text('{"lr": 0.5, "m": {"depth": 4}}')
    >>> compare_configs(d / "a.json", d / "b.json", "json")["summary"]
    ['lr: 0.1 → 0.5']
    """
    va, vb = _load(a, fmt), _load(b, fmt)
    if va is None or vb is None:
        return None
    la, lb = _leaves(va), _leaves(vb)
    keys = [k for k in dict.fromkeys([*la, *lb]) if la.get(k, _ABSENT) != lb.get(k, _ABSENT)]
    changed = [{"key": k, "a": la.get(k), "b": lb.get(k)} for k in keys]
    lines = [
        f"{k}: {_text(la.get(k, _ABSENT))} → {_text(lb.get(k, _ABSENT))}" for k in keys[:MAX_LINES]
    ]
    if len(changed) > MAX_LINES:
        lines.append(f"… {len(changed) - MAX_LINES} more keys changed")
    if not changed:
        lines = ["the same settings (only formatting or comments changed)"]
    return {"kind": "config", "changed": changed, "summary": lines}
