"""Names imported from the user's own modules go stale when the module's file is edited.

Found by the sixth trial: ``from settings import LR``, then ``settings.py`` edited and the
import run again: Python hands back the module it has, LR keeps the old value, and the
run recorded LR=0.1 beside a ``settings.py`` that says 0.25, with no word.
"""

from __future__ import annotations

from pathlib import Path

from nbtrack.modstamps import imported_names
from test_lineage import _cell_runs
from test_magics import _settle


def _edit(path: Path, text: str) -> None:
    path.write_text(text)  # a new size: a change whatever the file system's mtime grain


def test_the_names_imports_bind_and_their_modules():
    source = "import a.b\nimport c.d as e\nfrom f import g as h, i\nfrom . import j\nx = 1"
    assert imported_names(source) == {"a": "a", "e": "c.d", "h": "f", "i": "f"}


def test_a_name_from_an_edited_module_is_stale_until_reloaded_and_imported_again(
    project_dir, kernel
):
    settings = project_dir / "settings.py"
    _edit(settings, "LR = 0.1\n")
    kernel.ok("from settings import LR", cell_id="imp")
    first = kernel.ok("%%track fit\nscore = LR * 2", cell_id="fit")
    assert "stale input" not in first.text

    # settings.py edited, the import run again: LR is still the old value, and says so
    _edit(settings, "LR = 0.25\n")
    kernel.ok("from settings import LR", cell_id="imp")
    second = kernel.ok("%%track fit\nscore = LR * 2", cell_id="fit")
    assert (
        "stale input: LR came from settings.py (imported by In[4]), which was edited since: "
        "importlib.reload(settings), then run In[4] again"
    ) in second.text.replace("\n", " ")
    run = _cell_runs(_settle(project_dir), "fit")[1]
    assert run.params == {"LR": 0.1}  # the value the cell used, stale or not
    assert [(i.name, i.stale) for i in run.named_inputs] == [("LR", True)]

    # reloaded, then imported again: the new value, fresh
    kernel.ok("import importlib, settings\nimportlib.reload(settings)")
    kernel.ok("from settings import LR", cell_id="imp")
    third = kernel.ok("%%track fit\nscore = LR * 2", cell_id="fit")
    assert "stale input" not in third.text
    assert _cell_runs(_settle(project_dir), "fit")[2].params == {"LR": 0.25}


def test_a_module_or_function_read_after_its_file_was_edited_is_named_stale(project_dir, kernel):
    (project_dir / "helpers.py").write_text("K = 2\ndef scale(x):\n    return x * K\n")
    kernel.ok("import helpers\nfrom helpers import scale", cell_id="imp")
    kernel.ok("%%track ok\na = helpers.K + scale(1)")
    _edit(project_dir / "helpers.py", "K = 30\ndef scale(x):\n    return x * K\n")
    out = kernel.ok("%%track again\na = helpers.K + scale(1)")
    text = out.text.replace("\n", " ")
    assert "stale input: helpers came from helpers.py" in text
    assert "stale input: scale came from helpers.py" in text
    # the module reloaded: helpers.K is fresh, scale (bound before the reload) is not
    kernel.ok("import importlib\nimportlib.reload(helpers)")
    after = kernel.ok("%%track last\na = helpers.K + scale(1)").text.replace("\n", " ")
    assert "stale input: helpers" not in after and "stale input: scale came from" in after
    # an installed library is never a module that changes under the session
    plain = kernel.ok("import json\nfrom json import dumps\n")
    assert plain.status == "ok"
    assert "stale" not in kernel.ok("%%track lib\ns = dumps(json.loads('1'))").text
