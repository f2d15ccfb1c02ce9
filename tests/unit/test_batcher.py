"""The cross-request Batcher and the decode loop, over a fake engine."""

import threading
import time
from concurrent.futures import CancelledError

import numpy as np
import pytest
from fakes import FakeEngine, tone

from leanspeech.stt import batcher as batcher_module
from leanspeech.stt.batcher import Batcher, QueueFullError
from leanspeech.stt.decode_loop import CancelToken, DirectDecoder, decode_windows, encode_window
from leanspeech.stt.options import TranscribeOptions
from leanspeech.stt.windows import Window

OPTIONS = TranscribeOptions(language="en", without_timestamps=True)


def item(engine, offset=0.0, seconds=1.0):
    return encode_window(engine, Window(tone(seconds), offset, seconds), "en")


@pytest.fixture
def engine():
    return FakeEngine()


def test_windows_submitted_together_are_decoded_in_one_call(engine):
    batcher = Batcher(engine, window_ms=200, max_batch=8)
    try:
        futures = batcher.submit([item(engine, i) for i in range(5)], OPTIONS)
        results = [f.result(timeout=10) for f in futures]
    finally:
        batcher.close()
    assert engine.calls == [5]
    assert [r[0].start for r in results] == [0, 1, 2, 3, 4]  # each window gets its own result


def test_windows_of_concurrent_callers_share_a_batch_up_to_max_batch(engine):
    batcher = Batcher(engine, window_ms=1000, max_batch=4)
    futures = []

    def caller(i):
        futures.extend(batcher.submit([item(engine, i)], OPTIONS))

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(6)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for f in futures:
            f.result(timeout=10)
    finally:
        batcher.close()
    assert sum(engine.calls) == 6 and max(engine.calls) == 4 and len(engine.calls) == 2


def test_different_options_are_never_batched_together(engine):
    batcher = Batcher(engine, window_ms=200, max_batch=8)
    try:
        a = batcher.submit([item(engine, 0), item(engine, 1)], OPTIONS)
        b = batcher.submit([item(engine, 2)], OPTIONS.with_(beam_size=1))
        for f in a + b:
            f.result(timeout=10)
    finally:
        batcher.close()
    assert sorted(engine.calls) == [1, 2]


def test_a_cancelled_window_leaves_its_batch_and_harms_no_one(engine):
    batcher = Batcher(engine, window_ms=300, max_batch=8)
    try:
        gone = batcher.submit([item(engine, 0)], OPTIONS)
        kept = batcher.submit([item(engine, 1)], OPTIONS)
        assert gone[0].cancel()  # the client went away while its window waited
        assert kept[0].result(timeout=10)[0].start == 1
    finally:
        batcher.close()
    assert engine.decoded == [1]


def test_a_full_queue_raises_queue_full_with_a_retry_time(engine):
    slow = FakeEngine(decode_s=0.5)
    batcher = Batcher(slow, window_ms=0, max_batch=1, max_queue=2)
    try:
        first = batcher.submit([item(slow, 0)], OPTIONS)
        queued = batcher.submit([item(slow, 1)], OPTIONS)
        with pytest.raises(QueueFullError) as err:
            batcher.submit([item(slow, 2), item(slow, 3)], OPTIONS)
        assert err.value.retry_after >= 1 and "queue is full" in str(err.value)
        with pytest.raises(QueueFullError):
            batcher.reserve(3)
        for f in first + queued:
            f.result(timeout=10)  # what was queued still completes
    finally:
        batcher.close()


def test_a_decode_error_reaches_every_window_of_the_batch():
    broken = FakeEngine(fail=RuntimeError("kernel failed"))
    batcher = Batcher(broken, window_ms=100, max_batch=4)
    try:
        futures = batcher.submit([item(broken, 0), item(broken, 1)], OPTIONS)
        for f in futures:
            with pytest.raises(RuntimeError, match="kernel failed"):
                f.result(timeout=10)
    finally:
        batcher.close()


def test_close_cancels_what_is_queued():
    slow = FakeEngine(decode_s=0.3)
    batcher = Batcher(slow, window_ms=0, max_batch=1)
    first = batcher.submit([item(slow, 0)], OPTIONS)
    for _ in range(200):  # wait until the worker is decoding it
        if first[0].running():
            break
        threading.Event().wait(0.01)
    rest = batcher.submit([item(slow, 1), item(slow, 2)], OPTIONS)
    batcher.close()
    assert first[0].result(timeout=10)
    assert all(f.cancelled() for f in rest)


# ---- the decode loop ------------------------------------------------------------------

def windows(n):
    return [Window(tone(1.0), float(i), 1.0) for i in range(n)]


def test_the_loop_keeps_window_order_and_groups_for_the_direct_decoder(engine):
    seen = []
    out = decode_windows(engine, windows(5), OPTIONS, DirectDecoder(engine), group=2,
                         on_window=lambda i, r: seen.append((i, r[0].start)))
    assert engine.calls == [2, 2, 1]
    assert seen == [(i, float(i)) for i in range(5)] and len(out.per_window) == 5
    assert out.language == "en"


def test_the_loop_detects_the_language_once_when_none_is_given():
    engine = FakeEngine(language="de")
    out = decode_windows(engine, windows(3), TranscribeOptions(without_timestamps=True), DirectDecoder(engine), group=3)
    assert out.language == "de" and out.language_probability == pytest.approx(0.9)


def test_a_cancelled_loop_stops_and_drops_its_queued_windows():
    slow = FakeEngine(decode_s=0.2)
    batcher = Batcher(slow, window_ms=0, max_batch=1)
    token = CancelToken()
    result = {}

    def run():
        try:
            decode_windows(slow, windows(20), OPTIONS, batcher, cancel=token)
        except CancelledError:
            result["cancelled"] = True

    t = threading.Thread(target=run)
    t.start()
    threading.Event().wait(0.3)
    token.cancel()
    t.join(10)
    batcher.close()
    assert result.get("cancelled") and not t.is_alive()
    assert len(slow.decoded) < 20


def test_max_in_flight_bounds_what_one_caller_queues(engine):
    slow = FakeEngine(decode_s=0.05)
    batcher = Batcher(slow, window_ms=0, max_batch=1, max_queue=3)
    try:
        out = decode_windows(slow, windows(10), OPTIONS, batcher, max_in_flight=2)
    finally:
        batcher.close()
    assert len(out.per_window) == 10 and np.diff(slow.decoded).min() > 0  # in order, never over the queue


class SlowEncoder(FakeEngine):
    """Encodes a window in ``encode_s`` seconds (the model busy with it)."""

    def __init__(self, encode_s: float):
        super().__init__()
        self.encode_s = encode_s

    def encode(self, window, span_s=None, pad_s=None):
        time.sleep(self.encode_s)
        return super().encode(window, span_s, pad_s)


def test_a_batch_waits_for_the_windows_being_encoded_when_it_formed():
    """The model runs calls in order: a decode started while another caller's window is
    being encoded would run after that encode anyway, so the batch waits and takes it."""
    engine = SlowEncoder(encode_s=0.4)
    batcher = Batcher(engine, window_ms=10, max_batch=4)
    results = []
    try:
        # caller A is encoding (0.4 s) when caller B's window arrives
        a = threading.Thread(target=lambda: results.append(
            decode_windows(engine, [Window(tone(1.0), 0.0, 1.0)], OPTIONS, batcher)))
        a.start()
        time.sleep(0.05)
        b = batcher.submit([item(FakeEngine(), 1.0)], OPTIONS)
        b[0].result(timeout=10)
        a.join(timeout=10)
    finally:
        batcher.close()
    assert engine.calls == [2]  # one decode for both, not B alone then A
    assert len(results) == 1 and results[0].per_window[0][0].start == 0.0


def test_windows_encoded_with_other_options_are_not_waited_for():
    engine = SlowEncoder(encode_s=0.6)
    batcher = Batcher(engine, window_ms=10, max_batch=4)
    try:
        a = threading.Thread(target=lambda: decode_windows(engine, [Window(tone(1.0), 0.0, 1.0)],
                                                           OPTIONS.with_(beam_size=1), batcher))
        a.start()
        time.sleep(0.05)
        started = time.monotonic()
        batcher.submit([item(FakeEngine(), 1.0)], OPTIONS)[0].result(timeout=10)
        waited = time.monotonic() - started
        a.join(timeout=10)
    finally:
        batcher.close()
    assert waited < 0.4 and sorted(engine.calls) == [1, 1]


def test_the_wait_for_encodes_is_bounded(monkeypatch):
    """An encode that never submits (a caller stuck before its submit) holds a batch at most
    ``ENCODE_WAIT_S``."""
    monkeypatch.setattr(batcher_module, "ENCODE_WAIT_S", 0.3)
    engine = FakeEngine()
    batcher = Batcher(engine, window_ms=10, max_batch=4)
    release = threading.Event()

    def stuck():
        with batcher.encoding(OPTIONS):
            release.wait(10)

    a = threading.Thread(target=stuck)
    try:
        a.start()
        time.sleep(0.05)
        started = time.monotonic()
        batcher.submit([item(engine, 1.0)], OPTIONS)[0].result(timeout=10)
        waited = time.monotonic() - started
    finally:
        release.set()
        a.join(timeout=10)
        batcher.close()
    assert 0.2 < waited < 2.0 and engine.calls == [1]
