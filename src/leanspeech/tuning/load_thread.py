"""Load a CTranslate2 model in a thread that ends with the load (``in_passing_thread``).

Not the engine's business how its model is loaded into the process: ``CT2Engine.load``,
``leanspeech plan``'s child and the benchmarks that load faster-whisper all go through here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from leanspeech.tuning.malloc import spare_arena

T = TypeVar("T")


def in_passing_thread(fn: Callable[[], T], *, device: str = "cpu") -> T:
    """``fn()`` run in a new thread that ends when it returns (its result or its exception),
    for a model loaded on the CPU; for another ``device`` (CUDA) ``fn()`` runs in the calling
    thread.

    CTranslate2 converts the weights (float16 to int8, say) with an OpenMP team of the thread
    that loads the model, and libgomp keeps that team while the thread lives. With more OpenMP
    threads alive than cores, libgomp stops spinning between parallel regions and a decode's
    hundreds of small regions each wake sleeping threads: slow, very slow in a VM. A thread that
    ends with the load takes its team with it (docs, benchmark "Where a CTranslate2 model is
    loaded")."""
    if device != "cpu":
        return fn()
    spare_arena()  # the thread takes a malloc arena of its own (see there)
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=run, name="leanspeech-load", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]
