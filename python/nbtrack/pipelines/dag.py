"""The notebook graph, inferred from recorded runs: no YAML, no declared stages.

Each notebook's current state is its newest finished notebook run (``NotebookHead``).
What its cells wrote are its outputs; what they read, less what the notebook itself
wrote (an intermediate file, a model read back), are its inputs. Notebook A is
upstream of notebook B when B's current run read a path A's current run wrote: the
same file, a file inside a folder B read, or a file of a folder A wrote. When several
notebooks wrote a path, the one whose version B read is its producer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import PipelineGraphError
from ..models import DataVersion, NotebookHead, Run

# Data versions that are not files: a DataFrame is known by its fingerprint only.
_NOT_FILES = frozenset({"dataframe"})


@dataclass
class Stage:
    """One notebook of the graph and what its current run read and wrote."""

    notebook: str
    """Project-relative path of the notebook (as recorded)."""
    head: NotebookHead
    inputs: dict[str, DataVersion] = field(default_factory=dict)
    outputs: dict[str, DataVersion] = field(default_factory=dict)

    @property
    def run(self) -> Run:
        return self.head.run


def stage_of(head: NotebookHead) -> Stage:
    """The stage of a notebook: its last written version of each output, its first read of each input."""
    notebook = head.run.notebook_path or ""
    outputs: dict[str, DataVersion] = {}
    for d in head.data:
        if d.role == "output" and d.hash and d.kind not in _NOT_FILES:
            outputs[d.path] = d  # a later cell's write is the version the notebook left
    inputs: dict[str, DataVersion] = {}
    for d in head.data:
        internal = d.path in outputs or d.path == notebook
        if d.role == "input" and d.hash and d.kind not in _NOT_FILES and not internal:
            inputs.setdefault(d.path, d)
    return Stage(notebook, head, inputs, outputs)


def _contains(folder: str, path: str) -> bool:
    return path.startswith(folder.rstrip("/") + "/")


@dataclass
class Dag:
    """Notebooks and the paths that link them: ``edges[upstream][downstream]`` lists the paths."""

    stages: dict[str, Stage]
    edges: dict[str, dict[str, list[str]]]

    def upstream(self, notebook: str) -> list[str]:
        return sorted(u for u, downs in self.edges.items() if notebook in downs)

    def downstream(self, notebook: str) -> list[str]:
        return sorted(self.edges.get(notebook, {}))

    def producers(self, path: str) -> list[str]:
        """Notebooks whose current run wrote ``path``, a file inside it, or a folder holding it."""
        return sorted(
            s.notebook
            for s in self.stages.values()
            if any(out == path or _contains(path, out) or _contains(out, path) for out in s.outputs)
        )

    def order(self, within: Iterable[str] | None = None) -> list[str]:
        """The notebooks upstream first (ties by name); a ``PipelineGraphError`` on a cycle."""
        nodes = set(self.stages if within is None else within)
        waiting = {n: {u for u in self.upstream(n) if u in nodes} for n in nodes}
        ordered: list[str] = []
        ready = sorted(n for n, ups in waiting.items() if not ups)
        while ready:
            n = ready.pop(0)
            ordered.append(n)
            del waiting[n]
            for d in self.downstream(n):
                if d in waiting and n in waiting[d]:
                    waiting[d].discard(n)
                    if not waiting[d]:
                        ready.append(d)
            ready.sort()
        if waiting:
            raise PipelineGraphError(self._describe_cycle(set(waiting)))
        return ordered

    def _describe_cycle(self, nodes: set[str]) -> str:
        # Every node left over has an upstream among the left-overs: walk back until one repeats.
        path = [min(nodes)]
        while True:
            back = min(u for u in self.upstream(path[-1]) if u in nodes)
            if back in path:
                loop = path[path.index(back) :] + [back]
                break
            path.append(back)
        loop.reverse()  # upstream first
        links = "; ".join(
            f"{b} reads {', '.join(self.edges[a][b])} from {a}"
            for a, b in zip(loop, loop[1:], strict=False)
        )
        return f"the notebooks form a cycle: {' -> '.join(loop)} ({links})"

    def ancestors(self, notebooks: Iterable[str]) -> set[str]:
        """``notebooks`` and every notebook upstream of them."""
        seen: set[str] = set()
        todo = list(notebooks)
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(self.upstream(n))
        return seen

    def select(self, targets: Sequence[str]) -> set[str]:
        """The notebooks that bring ``targets`` up to date: each target and its upstream.

        A target is a recorded notebook path or a data path (a file or a folder) relative
        to the project; no targets means every notebook.
        """
        if not targets:
            return set(self.stages)
        chosen: set[str] = set()
        for target in targets:
            if target in self.stages:
                chosen.add(target)
                continue
            if target.endswith(".ipynb"):
                raise PipelineGraphError(f"no finished notebook run of {target} is recorded")
            found = self.producers(target)
            if not found:
                raise PipelineGraphError(f"no recorded notebook run writes {target}")
            chosen.update(found)
        return self.ancestors(chosen)

    def sinks(self, within: Iterable[str]) -> list[str]:
        """The notebooks of ``within`` nothing else in it reads from."""
        nodes = set(within)
        return sorted(n for n in nodes if not any(d in nodes for d in self.downstream(n)))

    # ------------------------------------------------------------------ rendering
    def _edge_list(self) -> list[tuple[str, str, list[str]]]:
        return [
            (a, b, paths)
            for a in self.order()
            for b, paths in sorted(self.edges.get(a, {}).items())
        ]

    def text(self) -> str:
        """One line per edge (``A -> B  (paths)``), upstream first; a lone notebook on its own line."""
        lines = [f"{a} -> {b}  ({', '.join(paths)})" for a, b, paths in self._edge_list()]
        linked = {n for a, downs in self.edges.items() for n in (a, *downs)}
        lines += [n for n in self.order() if n not in linked]
        return "\n".join(lines)

    def mermaid(self) -> str:
        """A Mermaid flowchart (GitHub and JupyterLab's Markdown render it)."""
        ids = {n: f"n{i}" for i, n in enumerate(self.order())}

        def quoted(text: str) -> str:
            return '"' + text.replace('"', "#quot;") + '"'

        lines = ["flowchart TD"]
        lines += [f"    {ids[n]}[{quoted(n)}]" for n in ids]
        lines += [
            f"    {ids[a]} -->|{quoted(', '.join(paths))}| {ids[b]}"
            for a, b, paths in self._edge_list()
        ]
        return "\n".join(lines)

    def dot(self) -> str:
        """A Graphviz digraph (``dot -Tsvg``)."""

        def quoted(text: str) -> str:
            return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

        lines = ["strict digraph {", "    rankdir=TB;"]
        lines += [f"    {quoted(n)};" for n in self.order()]
        lines += [
            f"    {quoted(a)} -> {quoted(b)} [label={quoted(chr(10).join(paths))}];"
            for a, b, paths in self._edge_list()
        ]
        return "\n".join([*lines, "}"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "notebooks": [
                {
                    "notebook": n,
                    "run_id": self.stages[n].run.run_id,
                    "inputs": sorted(self.stages[n].inputs),
                    "outputs": sorted(self.stages[n].outputs),
                }
                for n in self.order()
            ],
            "edges": [{"from": a, "to": b, "paths": paths} for a, b, paths in self._edge_list()],
        }


def build(heads: Sequence[NotebookHead]) -> Dag:
    """The graph of the notebooks whose current runs are ``heads``."""
    stages = {s.notebook: s for s in map(stage_of, heads) if s.notebook}
    dag = Dag(stages, {})
    for stage in stages.values():
        for path, read in stage.inputs.items():
            candidates = [u for u in dag.producers(path) if u != stage.notebook]
            # Several writers of one path: the producer is the one whose version was read.
            exact = [
                u
                for u in candidates
                if (written := stages[u].outputs.get(path)) is not None
                and written.hash == read.hash
            ]
            for u in exact or candidates:
                dag.edges.setdefault(u, {}).setdefault(stage.notebook, []).append(path)
    for downs in dag.edges.values():
        for paths in downs.values():
            paths.sort()
    return dag
