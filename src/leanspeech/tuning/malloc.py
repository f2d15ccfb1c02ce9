"""glibc's malloc, set for leanspeech's processes: how many arenas threads share, from what
size an allocation gets its own mapping, and handing free heap pages back to the OS. Why
each setting is what it is, and what it measured: docs, "Long files in bounded memory"."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

from leanspeech.memory import parse_bytes

logger = logging.getLogger(__name__)


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
    (``mallopt(M_ARENA_MAX)``, what the ``MALLOC_ARENA_MAX`` variable sets at start-up).
    Returns whether it was applied (glibc only; ``count`` 0 leaves glibc's default).

    glibc gives threads their own arenas, up to 8 per core, and freed pages stay in the
    arena that freed them. The server's worker threads take turns at decodes of varying
    size, so each arena ends up holding its own freed pages and RSS creeps up over a long
    session; the figures are in the README ("Memory over time", the live soak test)."""
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
    takes an arena of its own, and with no arena to spare the threads that run the model
    shared the others'. Their buffers and the main thread's audio then interleaved on one heap,
    and a long file's peak grew with its length: 3 minutes 386 MiB, 30 minutes 458 MiB, against
    375 and 417 with one arena more, as with the model loaded in the main thread (388 and 411).
    Lending the arena only while the model loaded did not help (378 and 454), nor did making
    the loading thread share the main arena (the limit at 1 while it started: 386 and 442)."""
    if _arena_limit <= 0:
        return False
    return _mallopt(M_ARENA_MAX, _arena_limit + 1)


def fix_mmap_threshold(nbytes: int) -> bool:
    """Give every allocation of ``nbytes`` or more its own mapping, handed back to the OS
    when it is freed (``mallopt(M_MMAP_THRESHOLD)``, what ``MALLOC_MMAP_THRESHOLD_`` sets
    at start-up). Returns whether it was applied (glibc only; 0 leaves glibc's default).

    glibc's threshold starts at 128 KiB and rises to the size of each mapped block freed,
    up to 32 MiB: after the first block of a long file's audio (19 MiB) is freed, every later
    block, window and encoder output of that size comes from the heap instead, where freed
    space is reused only by what fits in it and the heap grows with the file. A fixed
    threshold keeps large arrays out of the heap: a 2-hour file's peak RSS came within
    1.1x of a 3-minute file's (``benchmarks/longform.py``, README "Long files")."""
    return _mallopt(M_MMAP_THRESHOLD, nbytes)


def mmap_threshold(setting: str, *, server: bool) -> int:
    """The bytes the ``memory.malloc_mmap_threshold`` setting stands for. ``auto``: a fixed
    ``MMAP_THRESHOLD`` where files are transcribed, glibc's own (0) in the server. Its
    requests are short, the heap's reuse of CTranslate2's buffers is worth 8-14% of its
    throughput at 1-8 clients, and a fixed threshold lowered its peak by 2-5%."""
    if setting.strip().lower() == "auto":
        return 0 if server else MMAP_THRESHOLD
    return parse_bytes(setting) or 0
