"""Drift statistics between two versions of a table, from their stored profiles.

Numeric columns: the Population Stability Index (ten bins at the reference's deciles)
and the two-sample Kolmogorov-Smirnov statistic with its asymptotic p-value.
Categorical columns: the Jensen-Shannon distance (base 2, between 0 and 1). All
columns: null rate and type. Nothing here reads data: the distributions come from
the sketches ``driftsketch`` keeps in each profile.

Exact versus approximate (docs/monitoring.md says the same):
- a numeric column kept as distinct values (at most 1,000 of them) has its exact
  empirical distribution: KS statistic and PSI are exact (equal to scipy's
  ``ks_2samp`` statistic and a direct PSI on the raw data);
- a column kept on the 2 % logarithmic grid: PSI is exact for bin edges on the grid
  (the edges this module picks), and the KS statistic is the largest CDF gap at grid
  edges — never more than the true statistic, and short of it by at most the
  probability mass of one grid bucket;
- the KS p-value is Kolmogorov's limiting distribution at ``sqrt(n·m/(n+m))·D``
  (scipy's ``kstwobign``), which scipy's own ``ks_2samp`` also approaches for large
  samples (it computes an exact p-value for small ones).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .driftflags import Thresholds
from .driftsketch import decode, grid_edge, grid_index

PSI_BINS = 10
PSI_FLOOR = 1e-4  # an empty bin counts as this fraction (ln(0) is not a number)


# ---------------------------------------------------------------- distributions
@dataclass(frozen=True)
class Distribution:
    """A numeric column's distribution: sorted keys with counts (values, or grid buckets)."""

    keys: np.ndarray
    counts: np.ndarray
    grid: bool

    @functools.cached_property
    def cum(self) -> np.ndarray:
        """Counts up to and including each key, with a leading 0."""
        return np.concatenate([[0], np.cumsum(self.counts)])

    @functools.cached_property
    def n(self) -> int:
        return int(self.counts.sum())

    @functools.cached_property
    def fractions(self) -> np.ndarray:
        """The CDF at each key."""
        return self.cum[1:] / max(self.n, 1)

    @functools.cached_property
    def deciles(self) -> tuple[np.ndarray, np.ndarray]:
        """PSI bins of this distribution as the reference: the cuts and each bin's share."""
        levels = np.arange(1, PSI_BINS) / PSI_BINS
        picks = np.searchsorted(self.fractions, levels - 1e-12, side="left")
        cuts = np.unique(self.keys[np.minimum(picks, len(self.keys) - 1)])
        cuts = cuts[cuts < self.keys[-1]]  # a cut at the maximum leaves an empty last bin
        shares = np.diff(np.concatenate([[0.0], self.cdf(cuts), [1.0]]))
        return cuts, np.maximum(shares, PSI_FLOOR)

    @functools.cached_property
    def decile_edges(self) -> list[float]:
        """The PSI bin edges as values (grid cuts as their bucket's upper edge)."""
        return [float(e) for e in self.edges(self.deciles[0])]

    def on_grid(self) -> Distribution:
        if self.grid:
            return self
        return self._gridded

    @functools.cached_property
    def _gridded(self) -> Distribution:
        index = grid_index(self.keys)
        keys, inverse = np.unique(index, return_inverse=True)
        return Distribution(keys, np.bincount(inverse, weights=self.counts).astype(np.int64), True)

    def cdf(self, points: np.ndarray) -> np.ndarray:
        """Fraction of values at or below each point (in this distribution's key space)."""
        return self.cum[np.searchsorted(self.keys, points, side="right")] / max(self.n, 1)

    def edges(self, points: np.ndarray) -> np.ndarray:
        """Keys as values (grid buckets as their upper edge)."""
        return grid_edge(points) if self.grid else points


_decoded: dict[tuple[str, str], Distribution] = {}  # the reference is decoded once, not per version


def distribution(sketch: dict[str, Any]) -> Distribution | None:
    kind = sketch.get("kind")
    if kind not in ("values", "grid"):
        return None
    key = (sketch.get("values") or sketch["index"], sketch["counts"])
    found = _decoded.get(key)
    if found is None:
        counts = decode(sketch["counts"], "i8")
        if kind == "values":
            found = Distribution(decode(sketch["values"], "f8"), counts, False)
        else:  # grid indexes are stored as differences
            found = Distribution(np.cumsum(decode(sketch["index"], "i8")), counts, True)
        if len(_decoded) > 4096:
            _decoded.clear()
        _decoded[key] = found
    return found


def _common(a: Distribution, b: Distribution) -> tuple[Distribution, Distribution]:
    if a.grid or b.grid:
        return a.on_grid(), b.on_grid()
    return a, b


def ks_statistic(a: Distribution, b: Distribution) -> float:
    """The largest gap between the two empirical CDFs."""
    a, b = _common(a, b)
    if not a.n or not b.n:
        return 0.0
    # Both CDFs step only at their own keys: comparing them at every key of each is
    # comparing them everywhere (no union, no sort).
    gap_a = np.abs(a.fractions - b.cdf(a.keys))
    gap_b = np.abs(a.cdf(b.keys) - b.fractions)
    return float(max(gap_a.max(), gap_b.max()))


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for Kolmogorov's distribution (scipy's ``kstwobign.sf``)."""
    if x <= 0:
        return 1.0
    if x < 1.18:  # the theta-function form converges fast for small x
        y = math.exp(-(math.pi**2) / (8 * x * x))
        s = sum(y ** ((2 * k - 1) ** 2) for k in range(1, 8))
        return 1.0 - math.sqrt(2 * math.pi) / x * s
    total, k = 0.0, 1
    while True:
        term = math.exp(-2 * k * k * x * x)
        total += term if k % 2 else -term
        if term < 1e-18 or k == 100:
            return 2 * total
        k += 1


def ks_pvalue(d: float, n: int, m: int) -> float:
    if n == 0 or m == 0:
        return 1.0
    return min(1.0, max(0.0, kolmogorov_sf(math.sqrt(n * m / (n + m)) * d)))


def psi(ref: Distribution, cur: Distribution) -> tuple[float, list[float]]:
    """PSI over ten bins cut at the reference's deciles; returns it and the bin edges.

    Edges: the smallest reference key whose CDF reaches 0.1, 0.2, ... 0.9 (numpy's
    ``inverted_cdf`` quantiles); bins are closed on the right.
    """
    ref, cur = _common(ref, cur)
    if not ref.n or not cur.n:
        return 0.0, []
    cuts, p = ref.deciles
    q = np.maximum(np.diff(np.concatenate([[0.0], cur.cdf(cuts), [1.0]])), PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p))), ref.decile_edges


def js_distance(ref: dict[str, int], cur: dict[str, int]) -> float:
    """Jensen-Shannon distance (base 2) of two category count tables."""
    keys = sorted(set(ref) | set(cur))
    p = np.array([ref.get(k, 0) for k in keys], dtype=np.float64)
    q = np.array([cur.get(k, 0) for k in keys], dtype=np.float64)
    if not p.sum() or not q.sum():
        return 0.0
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(x: np.ndarray) -> float:
        nz = x > 0
        return float(np.sum(x[nz] * np.log2(x[nz] / m[nz])))

    return math.sqrt(max(0.0, (kl(p) + kl(q)) / 2))


def chi_square(ref: dict[str, int], cur: dict[str, int]) -> tuple[float, float]:
    """Pearson's chi-square test of homogeneity of two category count tables.

    The 2 x k table of counts (categories seen in either version), no continuity
    correction (scipy's ``chi2_contingency(..., correction=False)``); returns the
    statistic and its p-value with k - 1 degrees of freedom.
    """
    keys = sorted(set(ref) | set(cur))
    table = np.array([[ref.get(k, 0) for k in keys], [cur.get(k, 0) for k in keys]], float)
    total = table.sum()
    if len(keys) < 2 or not table[0].sum() or not table[1].sum():
        return 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    stat = float(np.sum((table - expected) ** 2 / expected))
    return stat, chi2_sf(stat, len(keys) - 1)


def chi2_sf(x: float, dof: int) -> float:
    """P(X > x) for a chi-square variable: the regularized upper incomplete gamma
    Q(dof/2, x/2), by its series below a + 1 and its continued fraction above."""
    a, z = dof / 2, x / 2
    if z <= 0:
        return 1.0
    log_front = -z + a * math.log(z) - math.lgamma(a)
    if z < a + 1:  # P(a, z) = front * sum z^n / (a (a+1) ... (a+n))
        term = total = 1.0 / a
        n = 0
        while term > total * 1e-16 and n < 10_000:
            n += 1
            term *= z / (a + n)
            total += term
        return min(1.0, max(0.0, 1.0 - math.exp(log_front) * total))
    # Q(a, z) = front / (z + 1 - a - 1(1-a)/(z + 3 - a - ...)), modified Lentz
    tiny = 1e-300
    b = z + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        h *= d * c
        if abs(d * c - 1) < 1e-16:
            break
    return min(1.0, max(0.0, math.exp(log_front) * h))


# ---------------------------------------------------------------- columns and tables
@dataclass
class ColumnDrift:
    """One column of the current version against the reference."""

    name: str
    kind: str  # numeric | categorical | none
    type_ref: str
    type: str
    null_ref: float
    null: float
    psi: float | None = None
    ks: float | None = None
    ks_p: float | None = None
    js: float | None = None
    chi2: float | None = None
    chi2_p: float | None = None
    exact: bool | None = None
    flags: list[str] = field(default_factory=list)
    note: str | None = None

    @property
    def drifted(self) -> bool:
        return bool(self.flags)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "drifted": self.drifted}

    def describe(self, t: Thresholds) -> str:
        """Why the column counts as drifted, e.g. ``age: PSI 0.41 > 0.2, KS p 3e-09``."""
        why = []
        if "type" in self.flags:
            why.append(f"type {self.type_ref} → {self.type}")
        if "psi" in self.flags:
            why.append(f"PSI {self.psi:.3g} > {t.psi:g}")
        if "ks" in self.flags:
            why.append(f"KS {self.ks:.3g}, p {self.ks_p:.2g} < {t.ks_p:g}")
        if "js" in self.flags:
            why.append(f"JS {self.js:.3g} > {t.js:g}")
        if "chi2" in self.flags:
            why.append(f"chi-square {self.chi2:.3g}, p {self.chi2_p:.2g} < {t.chi2_p:g}")
        if "nulls" in self.flags:
            why.append(f"nulls {self.null_ref:.1%} → {self.null:.1%}")
        return f"{self.name}: " + ", ".join(why)


@dataclass
class TableDrift:
    """Every column of one version against the reference version, plus schema changes."""

    rows_ref: int
    rows: int
    columns_added: list[str] = field(default_factory=list)
    columns_removed: list[str] = field(default_factory=list)
    columns_retyped: list[dict[str, str]] = field(default_factory=list)
    columns: list[ColumnDrift] = field(default_factory=list)

    @property
    def drifted(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.drifted]

    @property
    def schema_changed(self) -> bool:
        return bool(self.columns_added or self.columns_removed or self.columns_retyped)

    def __bool__(self) -> bool:
        return bool(self.drifted) or self.schema_changed

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_ref": self.rows_ref,
            "rows": self.rows,
            "columns_added": self.columns_added,
            "columns_removed": self.columns_removed,
            "columns_retyped": self.columns_retyped,
            "columns": [c.to_dict() for c in self.columns],
            "drifted": [c.name for c in self.drifted],
            "schema_changed": self.schema_changed,
        }

    def lines(self, t: Thresholds) -> list[str]:
        out = []
        if self.columns_added:
            out.append("columns added: " + ", ".join(self.columns_added))
        if self.columns_removed:
            out.append("columns removed: " + ", ".join(self.columns_removed))
        for r in self.columns_retyped:
            if not any(c.name == r["name"] and c.drifted for c in self.columns):
                out.append(f"{r['name']}: type {r['ref']} → {r['type']}")
        out.extend(c.describe(t) for c in self.drifted)
        return out


def sketches(profile: dict[str, Any]) -> dict[str, Any]:
    """The drift sketches of a profile, by column name."""
    return dict((profile.get("drift") or {}).get("columns") or {})


def compare(
    ref: dict[str, Any],
    cur: dict[str, Any],
    t: Thresholds | None = None,
    numeric: dict[str, tuple[float, float, bool]] | None = None,
) -> TableDrift:
    """Drift of profile ``cur`` against profile ``ref`` (both with drift sketches).

    ``numeric``: KS, PSI and exactness of numeric columns computed already (``driftbatch``).
    """
    t = t or Thresholds()
    numeric = numeric or {}
    cols_ref = {c["name"]: c for c in ref["columns"]}
    cols_cur = {c["name"]: c for c in cur["columns"]}
    sk_ref, sk_cur = sketches(ref), sketches(cur)
    out = TableDrift(
        rows_ref=ref["rows"],
        rows=cur["rows"],
        columns_added=[n for n in cols_cur if n not in cols_ref],
        columns_removed=[n for n in cols_ref if n not in cols_cur],
    )
    for name in (n for n in cols_cur if n in cols_ref):
        a, b = cols_ref[name], cols_cur[name]
        sa, sb = sk_ref.get(name) or {}, sk_cur.get(name) or {}
        kind_a, kind_b = _family(sa), _family(sb)
        col = ColumnDrift(
            name=name,
            kind=kind_b if kind_a == kind_b else "none",
            type_ref=a["type"],
            type=b["type"],
            null_ref=a["null_fraction"],
            null=b["null_fraction"],
        )
        if a["type"] != b["type"]:
            out.columns_retyped.append({"name": name, "ref": a["type"], "type": b["type"]})
        if abs(col.null - col.null_ref) > t.nulls:
            col.flags.append("nulls")
        if kind_a != kind_b:
            col.flags.append("type")
            col.note = f"type changed ({a['type']} → {b['type']}): distributions not compared"
        elif kind_b == "numeric":
            da, db = distribution(sa), distribution(sb)
            assert da is not None and db is not None
            if name in numeric:
                col.ks, col.psi, col.exact = numeric[name]
            else:
                col.exact = not (da.grid or db.grid)
                col.ks = ks_statistic(da, db)
                col.psi, _ = psi(da, db)
            col.ks_p = ks_pvalue(col.ks, da.n, db.n)
            if col.psi > t.psi:
                col.flags.append("psi")
            if col.ks_p < t.ks_p:
                col.flags.append("ks")
        elif kind_b == "categorical":
            col.exact = True
            col.js = js_distance(sa["counts"], sb["counts"])
            col.chi2, col.chi2_p = chi_square(sa["counts"], sb["counts"])
            if sa.get("mixed") or sb.get("mixed"):
                col.note = "numbers and text mixed: compared as categories"
            if col.js > t.js:
                col.flags.append("js")
            if col.chi2_p < t.chi2_p:
                col.flags.append("chi2")
        else:
            col.note = sb.get("reason") or sa.get("reason") or "not compared"
        out.columns.append(col)
    return out


def _family(sketch: dict[str, Any]) -> str:
    kind = sketch.get("kind")
    if kind in ("values", "grid"):
        return "numeric"
    if kind == "categories":
        return "categorical"
    return "none"
