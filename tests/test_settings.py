"""nbtrack.settings: every NBTRACK_* variable, read in one place, written down once."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

from nbtrack import settings
from nbtrack.exceptions import UsageError
from nbtrack.settings import parse_size

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "python" / "nbtrack"
CONFIGURATION = ROOT / "docs" / "configuration.md"


def test_size_limit_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBTRACK_MAX_BLOB_SIZE", "2G")
    assert settings.max_blob_size() == 2 << 30
    monkeypatch.setenv("NBTRACK_MAX_BLOB_SIZE", "")
    assert settings.max_blob_size() is None
    monkeypatch.setenv("NBTRACK_MAX_BLOB_SIZE", "0")
    assert settings.max_blob_size() is None
    assert parse_size("512k") == 512 << 10 and parse_size("1.5MiB") == 3 << 19
    with pytest.raises(UsageError, match="not a size"):
        parse_size("lots")


def test_settings_are_read_when_asked_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    # given no lock timeout set, then one set after nbtrack was imported
    monkeypatch.delenv("NBTRACK_LOCK_TIMEOUT", raising=False)
    assert settings.lock_timeout() == 60
    monkeypatch.setenv("NBTRACK_LOCK_TIMEOUT", "2.5")

    # then the next read sees it, and a value that is not a number names the variable
    assert settings.lock_timeout() == 2.5
    monkeypatch.setenv("NBTRACK_LOCK_TIMEOUT", "soon")
    with pytest.raises(UsageError, match="NBTRACK_LOCK_TIMEOUT must be a number"):
        settings.lock_timeout()


def test_parameters_that_are_not_a_json_object_are_logged_and_ignored(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NBTRACK_PARAMS", '{"lr": 0.1}')
    assert settings.params() == {"lr": 0.1}
    monkeypatch.setenv("NBTRACK_PARAMS", "lr=0.1")
    with caplog.at_level(logging.WARNING, logger="nbtrack"):
        assert settings.params() == {}
    assert "NBTRACK_PARAMS is not a JSON object" in caplog.text


def _parse(text: str) -> ast.Module:
    # CPython 3.11 shares the AST constructor's recursion counter between threads
    # (python/cpython#106905): a parse on another thread of this test process (a kernel
    # client's, a server's) can make this one raise SystemError. It is the
    # interpreter's fault, not the file's: parse again.
    try:
        return ast.parse(text)
    except SystemError:
        return ast.parse(text)


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = _parse(path.read_text())
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_only_the_settings_module_names_an_nbtrack_variable() -> None:
    # given every module of the package but settings.py
    named = [
        f"{path.relative_to(ROOT)}:{line}: {text}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "settings.py"
        for line, text in _string_constants(path)
        if text.startswith("NBTRACK_") and text.replace("_", "").isalnum()
    ]

    # then none names an NBTRACK_ variable on its own (docs and help text may mention one)
    assert named == []


def test_the_configuration_page_lists_every_variable_and_magic_setting() -> None:
    from nbtrack.magics import TrackMagics

    page = CONFIGURATION.read_text()
    rows = {
        line.split("|")[1].strip(" `"): line for line in page.splitlines() if line.startswith("| `")
    }

    # every variable, with its default, and nothing the code does not read
    variables = {name for name in rows if name.startswith("NBTRACK_")}
    assert variables == {s.name for s in settings.SETTINGS}
    for setting in settings.SETTINGS:
        assert setting.default.split(":")[0] in rows[setting.name], setting.name

    # every %config setting of the magic, with its default
    traits = TrackMagics.class_traits(config=True)
    assert {n for n in rows if n.startswith("TrackMagics.")} == {
        f"TrackMagics.{name}" for name in traits
    }
    for name, trait in traits.items():
        assert f"`{trait.default_value}`" in rows[f"TrackMagics.{name}"], name
