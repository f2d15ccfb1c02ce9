"""Models are loaded in a thread that ends with the load (``load_thread.in_passing_thread``)."""

import threading

import pytest

from leanspeech.stt import ct2_engine
from leanspeech.tuning.load_thread import in_passing_thread


def test_the_function_runs_in_a_new_thread_that_has_ended_when_it_returns():
    seen = []
    assert in_passing_thread(lambda: seen.append(threading.current_thread()) or 42) == 42
    assert seen[0] is not threading.current_thread() and not seen[0].is_alive()


def test_on_a_gpu_the_function_runs_in_the_calling_thread():
    seen = []
    in_passing_thread(lambda: seen.append(threading.current_thread()), device="cuda")
    assert seen == [threading.current_thread()]


def test_an_exception_reaches_the_caller():
    def fail():
        raise ValueError("bad weights")

    with pytest.raises(ValueError, match="bad weights"):
        in_passing_thread(fail)


def test_the_ctranslate2_model_is_loaded_in_such_a_thread(monkeypatch):
    """The real tiny.en: the load (CTranslate2 converts the weights there, with an OpenMP team
    of that thread) runs in a thread that is gone before the first decode."""
    from leanspeech.models.store import resolve_model

    seen = []
    real = ct2_engine.load_with_fallback

    def spy(*args, **kwargs):
        seen.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(ct2_engine, "load_with_fallback", spy)
    engine = ct2_engine.CT2Engine.load(resolve_model("tiny.en", offline=True), precision="int8", cpu_threads=1)
    try:
        assert len(seen) == 1 and seen[0] is not threading.current_thread() and not seen[0].is_alive()
        assert engine.resolution.compute_type == "int8"
    finally:
        engine.close()


def test_the_thread_is_given_its_malloc_arena_on_the_cpu_only(monkeypatch):
    """The loading thread takes an arena of its own (``memory.spare_arena``); a GPU load
    runs in the calling thread and needs none."""
    from leanspeech.tuning import load_thread as passing_thread

    spared = []
    monkeypatch.setattr(passing_thread, "spare_arena", lambda: spared.append(True) or True)
    in_passing_thread(lambda: None, device="cuda")
    assert spared == []
    in_passing_thread(lambda: None)
    assert spared == [True]
