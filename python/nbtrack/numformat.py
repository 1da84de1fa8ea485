"""One number format for every place nbtrack shows a number to a person.

The CLI's tables, the summary under a cell and the panel (``labextension``, the same
rule in TypeScript) print numbers alike; ``tests/fixtures/number_format.json`` holds
the rule and the cases both test suites read.

- integers, and integral floats below 1e15, as integers: ``3``, ``1234567``;
- other finite numbers with 1e-4 <= |x| < 1e6 in fixed notation, at most 6
  significant digits, trailing zeros removed: ``0.0001``, ``1234.57``;
- everything else in scientific notation, at most 6 significant digits, the
  exponent without ``+`` or leading zeros: ``1e-5``, ``1.23457e6``;
- ``NaN``, ``inf``, ``-inf``.
"""

from __future__ import annotations

import math

SIGNIFICANT = 6
FIXED_MIN = 1e-4
FIXED_MAX = 1e6
INTEGRAL_MAX = 1e15


def format_number(value: int | float) -> str:
    """``value`` as the panel and the CLI show it (``format_number(0.00015)``: ``0.00015``)."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    if abs(value) < INTEGRAL_MAX and value.is_integer():
        return str(int(value))
    # Round to 6 significant digits first; the rounded value picks the notation
    # (999999.5 rounds to 1e6, so it is scientific; 0.000099999999 to 0.0001, fixed).
    mantissa, _, exp_text = f"{value:.{SIGNIFICANT - 1}e}".partition("e")
    exponent = int(exp_text)
    rounded = float(f"{mantissa}e{exponent}")
    if FIXED_MIN <= abs(rounded) < FIXED_MAX:
        decimals = max(0, SIGNIFICANT - 1 - exponent)
        return _trim(f"{rounded:.{decimals}f}")
    return f"{_trim(mantissa)}e{exponent}"


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text
