"""Signatures and input examples, in MLflow's JSON shapes so export needs no translation.

A signature is ``{"inputs": [...], "outputs": [...]}``: a table is a list of
columns (``{"name": "age", "type": "long", "required": true}``), an array one
tensor spec (``{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}``),
the first dimension ``-1`` (any number of rows).
"""

from __future__ import annotations

import math
from typing import Any

from ..exceptions import UsageError

EXAMPLE_ROWS = 20  # rows of an input example kept in the store


def _column_type(dtype: Any) -> str:
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b":
        return "boolean"
    if kind == "i" or kind == "u":
        return "long" if size >= 8 or kind == "u" and size >= 4 else "integer"
    if kind == "f":
        return "double" if size >= 8 else "float"
    if kind == "M":
        return "datetime"
    if kind == "S":
        return "binary"
    return "string"


def _tensor(array: Any) -> list[dict[str, Any]]:
    return [
        {
            "type": "tensor",
            "tensor-spec": {"dtype": str(array.dtype), "shape": [-1, *array.shape[1:]]},
        }
    ]


def schema_of(data: Any) -> list[dict[str, Any]] | None:
    """The MLflow schema of a table or an array (None for what is neither)."""
    import numpy as np

    if data is None:
        return None
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(data, pd.DataFrame):
        return [
            {"name": str(c), "type": _column_type(data[c].dtype), "required": True}
            for c in data.columns
        ]
    if pd is not None and isinstance(data, pd.Series):
        return [{"type": _column_type(data.dtype), "required": True, **(
            {"name": str(data.name)} if data.name is not None else {})}]  # fmt: skip
    if hasattr(data, "detach"):  # a torch tensor
        data = data.detach().cpu().numpy()
    if isinstance(data, dict):
        return [
            {"name": str(k), "type": _column_type(np.asarray(v).dtype), "required": True}
            for k, v in data.items()
        ]
    try:
        array = np.asarray(data)
    except (TypeError, ValueError):
        return None
    if array.dtype == object or array.ndim == 0:
        return None
    return _tensor(array)


def infer(example: Any, output: Any) -> dict[str, Any] | None:
    """The signature of a model from an input example and its output on that example."""
    inputs = schema_of(example)
    if inputs is None:
        return None
    return {"inputs": inputs, "outputs": schema_of(output), "params": None}


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _plain(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def example_json(example: Any) -> dict[str, Any] | None:
    """The first rows of an input example as JSON: ``{"type": "dataframe"|"ndarray", ...}``."""
    import numpy as np

    if example is None:
        return None
    try:
        import pandas as pd

        if isinstance(example, pd.DataFrame):
            head = example.head(EXAMPLE_ROWS)
            return {
                "type": "dataframe",
                "columns": [str(c) for c in head.columns],
                "data": [[_plain(v) for v in row] for row in head.itertuples(index=False)],
            }
    except ImportError:  # pragma: no cover
        pass
    if hasattr(example, "detach"):
        example = example.detach().cpu().numpy()
    array = np.asarray(example)
    if array.dtype == object:
        raise UsageError("an input example is a DataFrame or an array of numbers")
    return {"type": "ndarray", "dtype": str(array.dtype), "data": array[:EXAMPLE_ROWS].tolist()}


def example_value(stored: dict[str, Any] | None) -> Any:
    """The input example back as a DataFrame or an array."""
    import numpy as np

    if stored is None:
        return None
    if stored.get("type") == "dataframe":
        import pandas as pd

        return pd.DataFrame(stored["data"], columns=stored["columns"])
    return np.asarray(stored["data"], dtype=stored.get("dtype"))
