"""numpy's BLAS threads in leanspeech's processes.

numpy's matrix products (the mel filter bank of every window's features, for one) run on
OpenBLAS, whose threads busy-wait for a while after each product before they sleep. On a
small machine they then take the cores that CTranslate2's encoder and decoder are using:
on 2 cores, with OpenBLAS's 2 threads, an encode of a 30 s window took 0.215 s against
0.156-0.162 s with one, and the server at 8 clients served 31.7-34.2 audio s/s with batching
off against 37.5-37.8 (README, "numpy's BLAS threads"). leanspeech's own matrix products are
small, so one thread costs them nothing measurable.
"""

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
