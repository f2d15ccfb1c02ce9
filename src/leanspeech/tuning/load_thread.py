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
    thread, as before: the cause below is the CPU's, and no GPU was here to measure one.

    CTranslate2 runs a model's calls in worker threads of its own, each with an OpenMP team,
    but it converts the weights (float16 to int8, say) in the thread that loads the model,
    with an OpenMP team of that thread too; libgomp keeps that team for as long as the thread
    lives. With more OpenMP threads alive than cores, libgomp stops spinning between parallel
    regions and puts its threads to sleep at every one of them, and waking them is slow
    (very slow in a VM). A decode runs hundreds of small regions a second: loaded in the main
    thread (or a pool thread that stays) on 2 cores, a beam-5 decode of 12 s of speech took
    0.40 s, loaded in a thread that then ended 0.11 s (README, "Where a CTranslate2 model is
    loaded"; ``benchmarks/load_thread.py``).
    """
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
