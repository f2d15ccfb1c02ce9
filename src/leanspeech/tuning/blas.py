"""numpy's BLAS threads in leanspeech's processes.

numpy's matrix products (the mel filter bank of every window's features, for one) run on
OpenBLAS, whose threads busy-wait after each product before they sleep; on a small machine
they take the cores the model is using. leanspeech's own products are small, so one thread
costs them nothing (docs, benchmark "numpy's BLAS threads")."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def limit_blas_threads(count: int) -> bool:
    """Let numpy's BLAS use at most ``count`` threads from now on, process-wide (threadpoolctl;
    0 leaves the library's own). Returns whether a BLAS library was limited."""
    if count <= 0:
        return False
    import numpy  # noqa: F401  (its BLAS must be loaded to be limited)
    from threadpoolctl import ThreadpoolController

    blas = ThreadpoolController().select(user_api="blas")
    if not blas.lib_controllers:
        return False
    blas.limit(limits=count)  # applies now and stays (not used as a context manager)
    logger.debug("numpy's BLAS limited to %d thread(s)", count)
    return True
