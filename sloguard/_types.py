"""Type aliases shared across the package (numpy array shapes used at module boundaries).

One home, so a module says `I64` and every reader knows it is a 1-d int64 array of counts or timestamps.
Only numpy is imported here: the pure core may use these.
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

I64: TypeAlias = npt.NDArray[np.int64]
"""Counts, epoch milliseconds, bucket indices."""
U64: TypeAlias = npt.NDArray[np.uint64]
"""Hashes."""
F64: TypeAlias = npt.NDArray[np.float64]
"""Ratios, burn rates, latencies in ms."""
Intp: TypeAlias = npt.NDArray[np.intp]
"""Row or column indices (numpy's native index type)."""
Bools: TypeAlias = npt.NDArray[np.bool_]
"""Masks."""
U8: TypeAlias = npt.NDArray[np.uint8]
"""Raw bytes viewed as an array."""
