"""A value's content hash through its pickle: a model, a dict of arrays, a tensor.

The pickle is streamed into the hash and given up past a size or a deadline. A PyTorch
tensor is hashed by its dtype, shape and bytes, not its own pickle: that one holds
``torch.save``'s archive, whose records differ at every save (a serialization id), so
the same ``X = torch.randn(256, 8)`` after ``torch.manual_seed(0)`` had a new fingerprint
in every kernel, and every run read "X: changed" (the sixth trial).
"""

from __future__ import annotations

import pickle
import sys
import time
from typing import Any

PICKLE_LIMIT = 64 << 20  # values are pickled into the hash up to this many bytes


class GiveUp(Exception):
    """The value is too large, or took too long, to be hashed whole."""


def hash_pickle(value: Any, h: Any, deadline: float, sample_bytes: int) -> bool:
    """Feed ``value``'s pickle into ``h``; whether a tensor in it was hashed from a
    sample (one larger than ``sample_bytes``). Raises ``GiveUp`` past the limits and
    whatever pickling raises."""
    pickler = _Pickler(_HashSink(h, deadline), sample_bytes)
    pickler.dump(value)
    return pickler.sampled


class _Pickler(pickle.Pickler):
    def __init__(self, sink: _HashSink, sample_bytes: int) -> None:
        super().__init__(sink, protocol=pickle.HIGHEST_PROTOCOL)
        self.sample_bytes = sample_bytes
        self.sampled = False

    def reducer_override(self, obj: Any) -> Any:
        torch = sys.modules.get("torch")
        if torch is None or not isinstance(obj, torch.Tensor):
            return NotImplemented
        data = obj.detach().cpu()
        try:
            flat = data.contiguous().reshape(-1).numpy()
        except Exception:  # bfloat16, quantized, sparse: as float32, or by its pickle
            try:
                flat = data.to(torch.float32).contiguous().reshape(-1).numpy()
            except Exception:
                return NotImplemented
        step = max(1, flat.nbytes // self.sample_bytes)
        self.sampled = self.sampled or step > 1
        content = flat[::step].tobytes()
        return _tensor, (type(obj).__qualname__, str(obj.dtype), tuple(obj.shape), content)


def _tensor(*state: Any) -> None:
    """What a tensor's hash is made of (never called: a pickle only for hashing)."""


class _HashSink:
    """A file for ``pickle`` that hashes what it is given, within limits."""

    def __init__(self, h: Any, deadline: float) -> None:
        self.h = h
        self.deadline = deadline
        self.size = 0

    def write(self, data: Any) -> int:
        self.size += len(data)
        if self.size > PICKLE_LIMIT:
            raise GiveUp(f"larger than {PICKLE_LIMIT >> 20} MiB")
        if time.perf_counter() > self.deadline:
            raise GiveUp("took too long")
        self.h.update(data)
        return len(data)
