"""KS and PSI of many versions of a numeric column against one reference, in one pass.

``nbtrack drift PATH`` compares every recorded version with the same reference. Pair
by pair that is a few small numpy calls per column and version (1,700 pairs for 100
versions of a 20-column table), which costs more in call overhead than in arithmetic.
Here the versions of one column are laid out as one matrix of counts over the union
of their keys, so the CDFs, the KS gaps and the PSI bins of all versions are a handful
of array operations. The numbers are those of ``drift.ks_statistic`` and ``drift.psi``
(the tests check they agree): the CDFs are compared at every key of either side,
which is comparing step functions everywhere; versions whose comparison needs the
grid (one side kept on it) are batched on the grid, the others on their exact values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .drift import PSI_FLOOR, Distribution, TableDrift, compare, distribution, sketches
from .driftflags import Thresholds


def numeric_drift(
    ref: Distribution, versions: Sequence[Distribution]
) -> list[tuple[float, float, bool]]:
    """``(ks, psi, exact)`` of each version against ``ref``, in the order given."""
    out: list[tuple[float, float, bool]] = [(0.0, 0.0, True)] * len(versions)
    exact = [i for i, d in enumerate(versions) if not (ref.grid or d.grid)]
    gridded = [i for i, d in enumerate(versions) if ref.grid or d.grid]
    for group, base, on_grid in ((exact, ref, False), (gridded, ref.on_grid(), True)):
        if not group:
            continue
        dists = [versions[i].on_grid() if on_grid else versions[i] for i in group]
        for i, (ks, psi) in zip(group, _batch(base, dists), strict=True):
            out[i] = (ks, psi, not on_grid)
    return out


def _batch(ref: Distribution, dists: list[Distribution]) -> list[tuple[float, float]]:
    every = np.concatenate([d.keys for d in dists])
    if not len(every) or not ref.n:
        return [(0.0, 0.0)] * len(dists)
    keys, ref_at, at = _union(ref, every)
    counts = np.zeros((len(dists), len(keys)), dtype=np.float64)
    rows = np.repeat(np.arange(len(dists)), [len(d.keys) for d in dists])
    counts[rows, at] = np.concatenate([d.counts for d in dists])
    n = counts.sum(axis=1)
    cdf = np.cumsum(counts, axis=1) / np.maximum(n, 1)[:, None]
    ref_counts = np.zeros(len(keys))
    ref_counts[ref_at] = ref.counts
    ref_cdf = np.cumsum(ref_counts) / max(ref.n, 1)
    ks = np.abs(cdf - ref_cdf).max(axis=1)
    cuts, p = ref.deciles
    at_cuts = cdf[:, np.searchsorted(keys, cuts)]
    ones = np.ones((len(dists), 1))
    q = np.maximum(np.diff(np.hstack([0 * ones, at_cuts, ones]), axis=1), PSI_FLOOR)
    psi = np.sum((q - p) * np.log(q / p), axis=1)
    empty = n == 0
    ks[empty], psi[empty] = 0.0, 0.0
    return [(float(a), float(b)) for a, b in zip(ks, psi, strict=True)]


def _union(ref: Distribution, every: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sorted union of the reference's and the versions' keys, and where each of
    theirs sits in it. Grid buckets are integers in a bounded range: marked in a
    table over that range, no sort (100 versions of a column: 170,000 keys)."""
    lo, hi = int(min(ref.keys[0], every.min())), int(max(ref.keys[-1], every.max()))
    if ref.grid and hi - lo < 4_000_000:
        present = np.zeros(hi - lo + 1, dtype=bool)
        present[ref.keys - lo] = True
        present[every - lo] = True
        position = np.cumsum(present) - 1
        return np.flatnonzero(present) + lo, position[ref.keys - lo], position[every - lo]
    keys, inverse = np.unique(np.concatenate([ref.keys, every]), return_inverse=True)
    return keys, inverse[: len(ref.keys)], inverse[len(ref.keys) :]


def compare_many(
    ref: dict[str, Any], profiles: Sequence[dict[str, Any]], t: Thresholds | None = None
) -> list[TableDrift]:
    """``drift.compare(ref, p, t)`` for each profile, numeric columns batched per column."""
    sk_ref = sketches(ref)
    sk_all = [sketches(p) for p in profiles]
    known: list[dict[str, tuple[float, float, bool]]] = [{} for _ in profiles]
    for name, sketch in sk_ref.items():
        base = distribution(sketch)
        if base is None:
            continue
        found = [(i, distribution(sk.get(name) or {})) for i, sk in enumerate(sk_all)]
        pairs = [(i, d) for i, d in found if d is not None]
        for (i, _), stats in zip(pairs, numeric_drift(base, [d for _, d in pairs]), strict=True):
            known[i][name] = stats
    return [compare(ref, p, t, numeric=k) for p, k in zip(profiles, known, strict=True)]
