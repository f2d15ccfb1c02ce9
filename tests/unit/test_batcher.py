"""The cross-request Batcher and the decode loop, over a fake engine."""

import threading
import time
from concurrent.futures import CancelledError, Future

import numpy as np
import pytest
from fakes import FakeEngine, tone

from leanspeech.errors import LeanspeechError
from leanspeech.stt import batcher as batcher_module
from leanspeech.stt.batcher import Batcher, QueueFullError
from leanspeech.stt.decode_loop import (
    CancelToken,
    DirectDecoder,
    Language,
    decode_windows,
    encode_window,
    iter_decoded,
)
from leanspeech.stt.options import TranscribeOptions
from leanspeech.stt.packing import Unencoded
from leanspeech.stt.segments import WindowSegment
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


# ---- packing the windows of concurrent requests (Batcher(pack=True)) -------------------


class PackingEngine(FakeEngine):
    """Decodes packed windows part by part (``decode_parts``), as the CTranslate2 engine
    does: each part one segment on its own timeline, or None for a part whose audio is
    quiet (the fake's stand-in for a part Whisper gave no words)."""

    def __init__(self, on_decode=None):
        super().__init__()
        self.encoded_lengths: list[float] = []  # seconds of every window encoded
        self.packed_calls: list[list[int]] = []  # parts per window of every decode call
        self.on_decode = on_decode  # called once, in the first decode

    def encode(self, window, span_s=None, pad_s=None):
        self.encoded_lengths.append(round(window.duration, 2))
        return window.audio.copy()

    def decode_parts(self, items, spans, options):
        self.packed_calls.append([1 if s is None else len(s) for s in spans])
        if self.on_decode is not None:
            self.on_decode, hook = None, self.on_decode
            hook()
        plain = [i for i, s in enumerate(spans) if s is None]
        decoded = dict(zip(plain, self.decode([items[i] for i in plain], options), strict=True)) if plain else {}
        out = []
        for i, (it, parts) in enumerate(zip(items, spans, strict=True)):
            if parts is None:
                out.append(decoded[i])
                continue
            row = []
            for start, end in parts:
                audio = it.encoded[int(start * 16000):int(end * 16000)]
                quiet = float(np.abs(audio).mean()) < 0.05
                text = f" part of {end - start:.1f} s"
                row.append(None if quiet else WindowSegment(text=text, tokens=(1,), start=0.0, end=end - start))
            out.append(row)
        return out


def unencoded(seconds, offset=0.0, loud=True):
    audio = tone(seconds) if loud else tone(seconds) * 0.01
    return Unencoded(Window(audio, offset, seconds), "en")


def test_short_windows_of_two_requests_share_one_encode_and_come_back_to_each():
    engine = PackingEngine()
    batcher = Batcher(engine, window_ms=300, max_batch=4, pack=True)
    try:
        a = batcher.submit([unencoded(8.0, offset=2.0)], OPTIONS)
        b = batcher.submit([unencoded(12.0, offset=40.0)], OPTIONS)
        ra, rb = a[0].result(timeout=10), b[0].result(timeout=10)
    finally:
        batcher.close()
    assert engine.encoded_lengths == [21.0]  # one encode: 8 s, a 1 s gap, 12 s
    assert engine.packed_calls == [[2]]
    # each on its own window's timeline, as if it had been decoded alone
    assert (ra[0].text, ra[0].start, ra[0].end) == (" part of 8.0 s", 2.0, 10.0)
    assert (rb[0].text, rb[0].start, rb[0].end) == (" part of 12.0 s", 40.0, 52.0)


def test_a_part_that_cannot_be_given_back_is_decoded_again_alone():
    engine = PackingEngine()
    batcher = Batcher(engine, window_ms=300, max_batch=4, pack=True)
    try:
        futures = batcher.submit([unencoded(6.0), unencoded(7.0, loud=False, offset=6.0)], OPTIONS)
        loud, quiet = (f.result(timeout=10) for f in futures)
    finally:
        batcher.close()
    assert engine.encoded_lengths == [14.0, 7.0]  # packed, then the quiet part alone
    assert engine.calls == [1]  # the second decode: the quiet part, as an ordinary window
    assert loud[0].text == " part of 6.0 s"
    assert quiet[0].text == " hello from the fake engine." and quiet[0].start == 6.0


def test_a_failed_part_is_packed_again_beside_a_newcomer_then_decoded_alone():
    later = []
    engine = PackingEngine(on_decode=lambda: later.extend(batcher.submit([unencoded(4.0, offset=50.0)], OPTIONS)))
    batcher = Batcher(engine, window_ms=100, max_batch=4, pack=True)
    try:
        loud, quiet = batcher.submit([unencoded(6.0), unencoded(5.0, loud=False, offset=6.0)], OPTIONS)
        results = [loud.result(timeout=10), quiet.result(timeout=10)]  # ``later`` is filled by then
        results += [f.result(timeout=10) for f in later]
    finally:
        batcher.close()
    # 6 s + quiet 5 s; the quiet part failed, packed again beside the 4 s request that came
    # meanwhile (it went back to the front of the queue); failed again: alone, decoded plainly
    assert engine.encoded_lengths == [12.0, 10.0, 5.0]
    assert engine.packed_calls == [[2], [2]] and engine.calls == [1]
    assert [r[0].text for r in results] == [" part of 6.0 s", " hello from the fake engine.", " part of 4.0 s"]
    assert results[1][0].start == 6.0


def test_windows_too_long_to_share_go_alone_in_the_same_decode():
    engine = PackingEngine()
    batcher = Batcher(engine, window_ms=300, max_batch=4, pack=True)
    try:
        futures = batcher.submit([unencoded(25.0), unencoded(10.0, offset=25.0), unencoded(12.0, offset=35.0)],
                                 OPTIONS)
        for f in futures:
            f.result(timeout=10)
    finally:
        batcher.close()
    # 25 s leaves no room: alone; 10 s and 12 s share the second window; one decode call
    assert engine.encoded_lengths == [25.0, 23.0]
    assert engine.packed_calls == [[1, 2]]


def test_windows_encoded_by_their_callers_are_never_packed():
    engine = PackingEngine()
    batcher = Batcher(engine, window_ms=300, max_batch=4, pack=True)
    try:
        encoded = batcher.submit([item(engine, 0.0, 5.0)], OPTIONS)
        raw = batcher.submit([unencoded(5.0, offset=5.0), unencoded(5.0, offset=10.0)], OPTIONS)
        for f in encoded + raw:
            f.result(timeout=10)
    finally:
        batcher.close()
    assert engine.packed_calls == [[1, 2]]


def test_a_batcher_that_does_not_pack_refuses_unencoded_windows(engine):
    batcher = Batcher(engine, pack=True)  # FakeEngine has no decode_parts: packing is off
    try:
        assert not batcher.packing
        with pytest.raises(ValueError, match="does not pack"):
            batcher.submit([unencoded(5.0)], OPTIONS)
    finally:
        batcher.close()
    with pytest.raises(ValueError, match="does not pack"):
        DirectDecoder(engine).submit([unencoded(5.0)], OPTIONS)


def test_a_cancelled_unencoded_window_is_neither_encoded_nor_decoded():
    engine = PackingEngine()
    batcher = Batcher(engine, window_ms=300, max_batch=4, pack=True)
    try:
        gone = batcher.submit([unencoded(9.0)], OPTIONS)
        kept = batcher.submit([unencoded(4.0, offset=3.0)], OPTIONS)
        assert gone[0].cancel()
        assert kept[0].result(timeout=10)[0].start == 3.0
    finally:
        batcher.close()
    assert engine.encoded_lengths == [4.0]


def test_the_loop_hands_windows_over_unencoded_only_where_asked_and_packable():
    engine = PackingEngine()
    batcher = Batcher(engine, window_ms=50, max_batch=4, pack=True)
    wins = [Window(tone(5.0), 5.0 * i, 5.0) for i in range(3)]
    try:
        state = Language(None)
        packed = list(iter_decoded(engine, wins, OPTIONS.with_(language=None), batcher, group=3, pack=True,
                                   state=state))
        assert engine.encoded_lengths == [17.0]  # 3 x 5 s and two gaps, one encode
        multilingual = list(iter_decoded(engine, wins, OPTIONS.with_(multilingual=True), batcher, group=3, pack=True))
        assert engine.encoded_lengths[1:] == [5.0, 5.0, 5.0]  # which language? not packable
        live = decode_windows(engine, wins, OPTIONS, batcher, group=3)  # live windows: encoded by the caller
        assert engine.encoded_lengths[4:] == [5.0, 5.0, 5.0]
        direct = list(iter_decoded(engine, wins, OPTIONS, DirectDecoder(engine), group=3, pack=True))
    finally:
        batcher.close()
    assert [r[0].text for r in packed] == [" part of 5.0 s"] * 3
    assert (state.language, state.probability) == ("en", 1.0)  # tiny.en knows one language
    assert [r[0].text for r in multilingual + live.per_window + direct] == [" hello from the fake engine."] * 9


def test_close_fails_a_packed_part_that_waits_to_go_again_alone():
    engine = PackingEngine()
    batcher = Batcher(engine, window_ms=300, max_batch=4, pack=True)
    future: Future = Future()
    future.set_running_or_notify_cancel()  # its first decode ran; it went back to the queue
    with batcher._cond:  # as ``_decode`` queues it again
        batcher._queue.appendleft(batcher_module._Item(Unencoded(Window(tone(1.0), 0.0, 1.0), "en", tries=1, apart=0),
                                                       OPTIONS, future, batcher_module._group_key(OPTIONS), 0.0,
                                                       running=True))
        batcher._closed = True  # the worker must not take it first
    batcher.close()
    with pytest.raises(LeanspeechError, match="unloaded"):
        future.result(timeout=1)
