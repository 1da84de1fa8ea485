"""When a column counts as drifted: the thresholds, apart from the statistics (numpy),
so the command line builds its ``drift`` options without importing them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    """When a column counts as drifted (Evidently's and the industry's usual defaults)."""

    psi: float = 0.2
    ks_p: float = 0.01
    js: float = 0.1
    nulls: float = 0.05  # absolute change of the null fraction
