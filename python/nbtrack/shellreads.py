"""The files a tracked cell's shell lines name: inputs no open() of the kernel shows.

``!cp a.csv b.csv`` writes ``b.csv`` (the file watch sees any writer) and reads
``a.csv``, which no hook in the kernel sees: the shell's ``cp`` opens it. So the words
of a cell's commands (``!cmd``, ``!!cmd``, ``%sx``/``%system``, a stacked
``%%bash``/``%%sh`` body, and the literal command of ``subprocess.run``/``call``/
``check_call``/``check_output``/``Popen`` or ``os.system``) that name an existing regular file when the cell starts are
taken as read, at that moment's version: ``cellfiles`` records each one as an input
unless the cell wrote it (``cp a b`` over an old ``b``: its output, not a read; ``sed
-i f``: its output too, the read is not claimed). A word with a shell expansion in it
(``$x``, ``{x}``, a glob) is not guessed at.
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
_EXPANSIONS = set("${}*?[]~`")
MAX_WORDS = 200  # words looked at per cell (a generated shell line is not read whole)


def commands(code: str) -> list[str | list[str]]:
    """The commands of a cell's transformed code: a shell text, or a literal argv.

    >>> commands("get_ipython().system('cp a b')\\nsubprocess.run(['wc', 'x'])\\nm.run(['y'])")
    ['cp a b', ['wc', 'x']]
    """
    if "get_ipython()" not in code and "system(" not in code and "subprocess" not in code:
        return []
    try:
        tree = parsed(code)
    except SyntaxError:
        return []
    found: list[str | list[str]] = []
    for node in walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name, args = node.func.attr, node.args
        texts = [a.value if isinstance(a, ast.Constant) else None for a in args]
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
    return found


def named_files(code: str, cwd: str) -> dict[str, os.stat_result]:
    """``{real path: stat now}`` of the existing regular files the cell's shell lines name."""
    out: dict[str, os.stat_result] = {}
    looked = 0
    for command in commands(code):
        try:
            words = shlex.split(command, comments=True) if isinstance(command, str) else command
        except ValueError:  # an unclosed quote: the shell says so, not us
            continue
        for word in words:
            looked += 1
            if looked > MAX_WORDS:
                return out
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
