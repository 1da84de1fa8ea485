"""The files a tracked cell's shell lines name: inputs no open() of the kernel shows.

``!cp a.csv b.csv`` writes ``b.csv`` (the file watch sees any writer) and reads
``a.csv``, which no hook in the kernel sees: the shell's ``cp`` opens it. So the words
of a cell's commands (``!cmd``, ``!!cmd``, ``%sx``/``%system``, a stacked
``%%bash``/``%%sh`` body, and the literal command of ``subprocess.run``/``call``/
``check_call``/``check_output``/``Popen`` or ``os.system``) that name an existing regular file when the cell starts are
taken as read, at that moment's version: ``cellfiles`` records each one as an input
unless the cell wrote it (``cp a b`` over an old ``b``: its output, not a read; ``sed
-i f``: its output too, the read is not claimed). A word with a shell expansion in it
(``$x``, ``{x}``, a glob) is not guessed at. Words are looked up where the kernel is
when the line runs: after ``%cd data`` or ``os.chdir("data")`` in ``data`` (the twelfth
trial's ``%cd data`` then ``!cp x.csv z.csv`` recorded the project's own ``x.csv``,
another file); after a change nbtrack cannot follow (``%cd $d``, ``%popd``), and in a
command after its own ``cd``, not at all.
"""

from __future__ import annotations

import ast
import os
import shlex
import stat

from .astwalk import parsed, walk

_CALLS = {"system", "getoutput"}  # get_ipython().system('cp a b'); os.system('cp a b')
_SUBPROCESS = {"run", "call", "check_call", "check_output", "Popen"}
_LINE_MAGICS = {"system", "sx"}
_CELL_MAGICS = {"bash", "sh"}
_CD_MAGICS = {"cd", "pushd", "popd"}
_CD_WORDS = {"cd", "pushd", "popd"}


class Cd:
    """A change of the kernel's folder in the cell: to ``target``, or to where nbtrack
    cannot tell (None)."""

    def __init__(self, target: str | None) -> None:
        self.target = target


_EXPANSIONS = set("${}*?[]~`")
MAX_WORDS = 200  # words looked at per cell (a generated shell line is not read whole)


def commands(code: str) -> list[str | list[str] | Cd]:
    """The commands of a cell's transformed code: a shell text, or a literal argv, and
    the changes of folder between them.

    >>> commands("get_ipython().system('cp a b')\\nsubprocess.run(['wc', 'x'])\\nm.run(['y'])")
    ['cp a b', ['wc', 'x']]
    """
    if "get_ipython()" not in code and "system(" not in code and "subprocess" not in code:
        return []
    try:
        tree = parsed(code)
    except SyntaxError:
        return []
    found: list[str | list[str] | Cd] = []
    for node in walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name, args = node.func.attr, node.args
        texts = [a.value if isinstance(a, ast.Constant) else _literal_words(a) for a in args]
        if name in _SUBPROCESS:  # subprocess.run([...]) only: many a .run() is no command
            owner = node.func.value
            name = name if isinstance(owner, ast.Name) and owner.id == "subprocess" else ""
        if name in _CALLS and texts and isinstance(texts[0], str):
            found.append(texts[0])
        elif name in _SUBPROCESS and args and isinstance(args[0], (ast.List, ast.Tuple)):
            words = [w.value for w in args[0].elts if isinstance(w, ast.Constant)]
            found.append([w for w in words if isinstance(w, str)])
        elif name in _SUBPROCESS and texts and isinstance(texts[0], str):
            found.append(texts[0])
        elif name == "run_line_magic" and len(texts) > 1 and texts[0] in _LINE_MAGICS:
            found.append(str(texts[1]))
        elif name == "run_cell_magic" and len(texts) > 2 and texts[0] in _CELL_MAGICS:
            found.append(str(texts[2]))
        elif name == "run_line_magic" and texts and texts[0] in _CD_MAGICS:
            line = texts[1] if len(texts) > 1 and texts[0] == "cd" else None
            found.append(Cd(_cd_target(line) if isinstance(line, str) else None))
        elif name == "chdir":  # os.chdir("data"), not os.chdir(f"runs/{i}")
            target = texts[0] if texts and isinstance(texts[0], str) else None
            found.append(Cd(None if target is None or _EXPANSIONS & set(target) else target))
    return found


def _literal_words(node: ast.expr) -> str | None:
    """An f-string's text, its filled-in parts as ``{}`` (an expansion: not a file word):
    ``os.system(f"python train.py --lr {lr}")`` names ``train.py``."""
    if not isinstance(node, ast.JoinedStr):
        return None
    parts = [v.value if isinstance(v, ast.Constant) else "{}" for v in node.values]
    return "".join(p if isinstance(p, str) else "{}" for p in parts)


def _cd_target(line: str) -> str | None:
    """Where ``%cd LINE`` goes, when a literal folder says it (``%cd -q data``)."""
    words = [w for w in line.split() if w != "-q"]
    if (
        len(words) != 1
        or words[0] == "-"
        or words[0].startswith("-b")
        or _EXPANSIONS & set(words[0])
    ):
        return None
    return words[0]


def named_files(code: str, cwd: str) -> dict[str, os.stat_result]:
    """``{real path: stat now}`` of the existing regular files the cell's shell lines name."""
    out: dict[str, os.stat_result] = {}
    looked = 0
    for command in commands(code):
        if isinstance(command, Cd):
            if command.target is None:
                return out  # (where the next lines look, nbtrack cannot tell)
            cwd = os.path.join(cwd, command.target)
            continue
        try:
            words = shlex.split(command, comments=True) if isinstance(command, str) else command
        except ValueError:  # an unclosed quote: the shell says so, not us
            continue
        for word in words:
            looked += 1
            if looked > MAX_WORDS:
                return out
            if word in _CD_WORDS:
                break  # (after its own cd, the command looks elsewhere)
            word = word.split("=", 1)[1] if word.startswith("-") and "=" in word else word
            if not word or word.startswith("-") or _EXPANSIONS & set(word):
                continue
            path = os.path.join(cwd, word)
            try:
                st = os.stat(path)
            except (OSError, ValueError):
                continue
            if stat.S_ISREG(st.st_mode):
                out.setdefault(os.path.realpath(path), st)
    return out
