"""numpy's BLAS threads (``leanspeech.tuning.blas``)."""

import numpy  # noqa: F401  (loads the BLAS the tests limit)
from threadpoolctl import threadpool_info, threadpool_limits

from leanspeech.config import Settings
from leanspeech.tuning.blas import limit_blas_threads


def blas_threads() -> set[int]:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_blas_is_limited_to_the_count_given():
    with threadpool_limits(limits=2, user_api="blas"):  # restored when the test ends
        assert blas_threads() == {2}
        assert limit_blas_threads(1)
        assert blas_threads() == {1}


def test_zero_leaves_the_library_alone():
    with threadpool_limits(limits=2, user_api="blas"):
        assert not limit_blas_threads(0)
        assert blas_threads() == {2}


def test_the_setting_defaults_to_one_thread_and_reaches_the_transcriber(monkeypatch):
    from leanspeech.cli.common import transcriber_kwargs
    from leanspeech.stt.options import TranscribeOptions

    assert Settings().stt.blas_threads == 1
    monkeypatch.setenv("LEANSPEECH_STT__BLAS_THREADS", "0")
    cfg = Settings()
    kwargs = transcriber_kwargs(cfg, TranscribeOptions(), model=None, device=None, precision=None, threads=None,
                                backend="ctranslate2")
    assert kwargs["blas_threads"] == 0
