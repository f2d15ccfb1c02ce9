"""glibc's malloc, set for leanspeech's processes: how many arenas threads share, from what
size an allocation gets its own mapping, and handing free heap pages back to the OS. Why
each setting is what it is, and what it measured: docs, "Long files in bounded memory"."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

from leanspeech.memory import parse_bytes

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def _libc():
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


def trim_heap() -> None:
    """Hand free heap pages back to the OS (glibc ``malloc_trim``); no garbage collection."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        try:
            libc.malloc_trim(0)
        except Exception:  # pragma: no cover
            pass


M_ARENA_MAX = -8  # glibc's mallopt parameters
M_MMAP_THRESHOLD = -3
#: the mmap threshold the CLI and ``Transcriber`` set (``fix_mmap_threshold``; the server
#: leaves glibc's unless ``memory.malloc_mmap_threshold`` says otherwise)
MMAP_THRESHOLD = 4 * 1024 * 1024


def _mallopt(param: int, value: int) -> bool:
    libc = _libc()
    if value <= 0 or libc is None or not hasattr(libc, "mallopt"):
        return False
    try:
        return bool(libc.mallopt(param, value))
    except Exception:  # pragma: no cover
        return False


def limit_malloc_arenas(count: int) -> bool:
    """Let the threads that start from now on share at most ``count`` glibc malloc arenas
    (``mallopt(M_ARENA_MAX)``, what ``MALLOC_ARENA_MAX`` sets at start-up). Returns whether it
    was applied (glibc only; ``count`` 0 leaves glibc's default).

    glibc gives threads their own arenas, up to 8 per core, and freed pages stay in the arena
    that freed them: threads that take turns at decodes of varying size each keep their own
    freed pages, and RSS creeps up over a long session."""
    global _arena_limit
    applied = _mallopt(M_ARENA_MAX, count)
    if applied:
        _arena_limit = count
    return applied


_arena_limit = 0  # what limit_malloc_arenas last set (0: glibc's default, nothing to lend)


def spare_arena() -> bool:
    """Allow one glibc malloc arena more than ``limit_malloc_arenas`` set, from now on (once:
    calling it again changes nothing). Returns whether it was applied.

    For a model loaded in a thread of its own (``load_thread.in_passing_thread``): that thread
    takes an arena, and with none to spare the model's threads shared the others', their
    buffers interleaved with the audio on one heap, and a long file's peak grew with its length
    (docs, "Long files and batching")."""
    if _arena_limit <= 0:
        return False
    return _mallopt(M_ARENA_MAX, _arena_limit + 1)


def fix_mmap_threshold(nbytes: int) -> bool:
    """Give every allocation of ``nbytes`` or more its own mapping, handed back to the OS
    when it is freed (``mallopt(M_MMAP_THRESHOLD)``, what ``MALLOC_MMAP_THRESHOLD_`` sets at
    start-up). Returns whether it was applied (glibc only; 0 leaves glibc's default).

    glibc's own threshold rises to the size of each mapped block freed: after a long file's
    first block of audio is freed, later blocks, windows and encoder outputs come from the heap,
    which then grows with the file. A fixed threshold keeps large arrays out of the heap (docs,
    "Long files and batching")."""
    return _mallopt(M_MMAP_THRESHOLD, nbytes)


def mmap_threshold(setting: str, *, server: bool) -> int:
    """The bytes the ``memory.malloc_mmap_threshold`` setting stands for. ``auto``: a fixed
    ``MMAP_THRESHOLD`` where files are transcribed, glibc's own (0) in the server, whose short
    requests gain more from the heap's reuse of CTranslate2's buffers than a fixed threshold
    saves (docs, "Configuration")."""
    if setting.strip().lower() == "auto":
        return 0 if server else MMAP_THRESHOLD
    return parse_bytes(setting) or 0
