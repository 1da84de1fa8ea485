"""The layer check (tools/check_layers.py) on nbtrack itself and on small broken packages."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def check_layers(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.check_layers", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root / "pkg"


def test_nbtrack_modules_keep_their_layers() -> None:
    # when the build checks nbtrack's own package
    result = check_layers()

    # then it finds no cycle, no oversized module, no store access around the client, no stray SQL
    assert result.returncode == 0, result.stdout + result.stderr
    assert "layers ok" in result.stdout


def test_a_cycle_hidden_in_a_function_or_type_checking_import_fails_with_the_cycle_listed(
    tmp_path: Path,
) -> None:
    # given a package whose cycle closes only through a deferred and a TYPE_CHECKING import
    package = write_package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from . import b\n",
            "b.py": """\
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from .c import Thing
                """,
            "c.py": """\
                def late():
                    from .a import b
                """,
        },
    )

    # when the layers are checked
    result = check_layers(str(package))

    # then the build fails and names the cycle and the lines that close it
    assert result.returncode == 1
    assert "pkg.a → pkg.b → pkg.c → pkg.a" in result.stdout
    assert "pkg.c imports pkg.a at" in result.stdout and "c.py:2" in result.stdout


def test_the_store_around_the_client_sql_outside_the_store_and_long_modules_are_named(
    tmp_path: Path,
) -> None:
    # given a package where a door imports the store, holds SQL, and grew too long
    package = write_package(
        tmp_path,
        {
            "__init__.py": "",
            "store/__init__.py": 'QUERY = "SELECT run_id FROM runs"\n',
            "client.py": "from .store import QUERY\n",
            "door.py": '"""Not SQL: SELECT the runs FROM a docstring."""\n'
            + "from .store import QUERY\n"
            + 'LATEST = f"SELECT * FROM runs WHERE run_id = {QUERY}"\n'
            + "x = 1\n" * 450,
        },
    )

    # when the layers are checked
    result = check_layers(str(package))

    # then each problem names its module, and the store package and the client pass
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(
        line.startswith("store reached around the client: pkg.door imports pkg.store")
        for line in lines
    )
    assert [line for line in lines if line.startswith("SQL outside the store")] == [
        f"SQL outside the store: pkg.door at {package / 'door.py'}:3: 'SELECT * FROM'"
    ]
    assert any(line.startswith("too long: pkg.door has 453 lines") for line in lines)
    assert "pkg.client" not in result.stdout.replace("only pkg.client", "")
