"""The process-wide settings a model's threads inherit, applied in one place (the server's
start and ``Transcriber``), before the model's threads start: glibc's malloc arenas are made
per thread, and the mmap threshold and numpy's BLAS threads hold for the whole process."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def configure(*, malloc_arenas: int, malloc_mmap_threshold: int, blas_threads: int) -> None:
    """``memory.limit_malloc_arenas``, ``memory.fix_mmap_threshold`` and
    ``blas.limit_blas_threads`` (0 leaves each one's default; see each for what it measured)."""
    from leanspeech.tuning.blas import limit_blas_threads
    from leanspeech.tuning.malloc import fix_mmap_threshold, limit_malloc_arenas

    if limit_malloc_arenas(malloc_arenas):
        logger.debug("glibc malloc arenas limited to %d", malloc_arenas)
    if fix_mmap_threshold(malloc_mmap_threshold):
        logger.debug("glibc mmap threshold fixed at %d bytes", malloc_mmap_threshold)
    limit_blas_threads(blas_threads)
