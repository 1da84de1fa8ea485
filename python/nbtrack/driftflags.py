"""When a drifted column is flagged: the thresholds of ``nbtrack drift`` and the run diff.

Kept apart from ``drift`` (which needs numpy) so the command line can show the
defaults in its help without importing numpy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    """When a column counts as drifted (Evidently's and the industry's usual defaults)."""

    psi: float = 0.2
    ks_p: float = 0.01
    js: float = 0.1
    chi2_p: float = 0.01  # Pearson's chi-square p-value of categorical counts
    nulls: float = 0.05  # absolute change of the null fraction
