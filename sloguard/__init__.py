"""sloguard: a streaming SLO monitoring daemon with exact event-time error budgets and burn rates."""

import os as _os

# Every numpy operation sloguard runs is elementwise or a tiny matrix product. OpenBLAS's worker
# threads (one per core) only spin around those: starting them costs ~50 ms of CPU at import, and
# spinning doubled `sloguard replay`'s CPU time on 2 cores. One thread unless told otherwise; this
# only takes effect when numpy is imported after sloguard (as in `python -m sloguard`).
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"

__all__ = ["__version__"]
