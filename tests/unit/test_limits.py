"""The bounds of the core, in-process: duration limits, live buffers, slots and eviction,
admission, the log's redaction, bounded metric labels, every error kind's status, atomic
writes."""

import io
import logging
import os
import time

import numpy as np
import pytest

from leanspeech.audio import AudioStream, SplitChannels, write_wav
from leanspeech.errors import AudioTooLongError


def _wav(seconds: float, channels: int = 1) -> bytes:
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(16000)
        left = (np.sin(np.arange(int(16000 * seconds)) / 10) * 3000).astype("<i2")
        frames = np.stack([left, -left], axis=1).reshape(-1) if channels == 2 else left
        w.writeframes(frames.tobytes())
    return buf.getvalue()


def test_a_container_longer_than_the_limit_is_refused_before_decoding():
    with pytest.raises(AudioTooLongError, match="lasts 20 s, over the limit of 10 s"):
        AudioStream(io.BytesIO(_wav(20)), max_seconds=10)
    assert sum(p.shape[0] for p in AudioStream(io.BytesIO(_wav(9)), max_seconds=10)) == 9 * 16000


def test_split_channels_read_each_channel_alone():
    split = SplitChannels(io.BytesIO(_wav(3, channels=2)), max_seconds=10)
    assert split.channels == 2
    left, right = (np.concatenate(list(split.open(c))) for c in (0, 1))
    assert left.shape == right.shape == (48000,)
    assert np.allclose(left, -right, atol=2 / 32768)  # the right channel is the left inverted
    with pytest.raises(AudioTooLongError):
        SplitChannels(io.BytesIO(_wav(12, channels=2)), max_seconds=10)
    assert SplitChannels(io.BytesIO(_wav(1))).channels == 1


def test_a_live_session_refuses_audio_past_its_buffer():
    from leanspeech.streaming.options import LiveBufferFullError, LiveOptions
    from leanspeech.streaming.session import StreamingSession

    session = StreamingSession(LiveOptions(max_buffer_s=12.0, use_vad=False))
    second = np.zeros(16000, np.float32)
    for _ in range(12):
        session.feed(second)
    with pytest.raises(LiveBufferFullError, match="MAX_BUFFER_S"):
        session.feed(second)
    assert session.buffered_s == 12.0  # nothing of the refused frame was kept


def test_a_failed_turn_takes_no_more_audio_and_a_pending_one_is_bounded():
    import asyncio
    import contextlib

    from leanspeech.errors import MemoryBudgetError
    from leanspeech.streaming.options import LiveBufferFullError
    from leanspeech.streaming.turn_transcriber import TurnTranscriber

    async def go():
        @contextlib.asynccontextmanager
        async def refused(on_segments):
            raise MemoryBudgetError("no room")
            yield

        turn = TurnTranscriber(refused, max_buffer_s=5)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        turn.feed(np.zeros(16000, np.float32))
        assert turn.seconds == 0.0  # the turn failed: its audio no longer collects
        with pytest.raises(MemoryBudgetError):
            await turn.result()

        gate = asyncio.Event()

        @contextlib.asynccontextmanager
        async def slow(on_segments):
            await gate.wait()
            yield

        pending = TurnTranscriber(slow, max_buffer_s=5)
        for _ in range(5):
            pending.feed(np.zeros(16000, np.float32))
        with pytest.raises(LiveBufferFullError):
            pending.feed(np.zeros(16000, np.float32))
        await pending.cancel()

    asyncio.run(go())


def test_an_idle_session_gives_its_slot_to_a_new_one():
    from leanspeech.runtime.slots import LiveSlots

    evicted = []
    slots = LiveSlots(2, 600, evict_idle_s=0.05)
    a = slots.enter("wyoming", evict=lambda: evicted.append("a"))
    b = slots.enter("whisperlive", evict=lambda: evicted.append("b"))
    assert slots.enter("realtime") is None  # both active a moment ago
    time.sleep(0.06)
    slots.touch(b)  # b streams; a is idle
    c = slots.enter("realtime", evict=lambda: evicted.append("c"))
    assert c is not None and evicted == ["a"] and slots.active == 2
    slots.leave(a)  # the evicted session's own leave changes nothing
    assert slots.active == 2
    assert LiveSlots(1, 600, evict_idle_s=0).enter("x") is not None
    # a session whose audio has ended waits for its results: never evicted
    slots = LiveSlots(1, 600, evict_idle_s=0.01)
    done = slots.enter("wyoming", evict=lambda: evicted.append("done"))
    slots.pin(done)
    time.sleep(0.02)
    assert slots.enter("wyoming") is None and "done" not in evicted


def test_admission_refuses_at_once_past_the_bound():
    from leanspeech.runtime.admission import Gate, TooManyRequestsError

    gate = Gate("transcriptions", 2, "LEANSPEECH_SERVER__MAX_TRANSCRIPTIONS")
    first, second = gate.enter(), gate.enter()
    with pytest.raises(TooManyRequestsError, match="MAX_TRANSCRIPTIONS") as refused:
        gate.enter()
    assert refused.value.retry_after > 0 and refused.value.kind == "too_many_requests"
    first.release()
    first.release()  # idempotent
    assert gate.in_flight == 1
    gate.enter()
    second.release()


def test_the_log_never_shows_a_token():
    from leanspeech.logs import RedactTokens

    record = logging.LogRecord("uvicorn.error", logging.INFO, "", 0, '%s - "WebSocket %s" [accepted]',
                               ("127.0.0.1:5", "/v1/live?x=1&token=s3cr3t-value"), None)
    RedactTokens().filter(record)
    assert "s3cr3t" not in record.getMessage() and "token=***" in record.getMessage()


def test_metric_labels_are_bounded():
    from leanspeech.server.metrics import Metrics

    metrics = Metrics()
    for i in range(50):
        metrics.observe_request("unmatched", f"BREW{i}", 200, 0.01)
    assert b"BREW" not in metrics.render() and b'method="other"' in metrics.render()


def test_every_error_kind_has_a_status():
    import importlib
    import pkgutil

    import leanspeech
    from leanspeech.errors import LeanspeechError
    from leanspeech.server.errors import STATUS

    for module in pkgutil.walk_packages(leanspeech.__path__, "leanspeech."):
        ray_adapters = ("leanspeech.server.ray_serve", "leanspeech.batch.on_ray", "leanspeech.web")
        if not module.name.startswith(ray_adapters) and "__main__" not in module.name:
            try:
                importlib.import_module(module.name)
            except ImportError:
                continue

    def kinds(cls):
        for sub in cls.__subclasses__():
            if isinstance(getattr(sub, "kind", None), str):
                yield sub.kind
            yield from kinds(sub)

    missing = {k for k in kinds(LeanspeechError) if k not in STATUS} - {"cuda", "cpu"}
    assert not missing, f"error kinds with no status (they would be 500s): {missing}"
    assert all(status != 500 for status, _ in STATUS.values())


def test_an_atomic_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    from leanspeech.atomic import write_text_atomic

    target = tmp_path / "failed.json"
    write_text_atomic(target, "[]\n")
    assert target.read_text() == "[]\n"

    def broken(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        write_text_atomic(target, "[1]\n")
    assert target.read_text() == "[]\n" and os.listdir(tmp_path) == ["failed.json"]


def test_write_wav_roundtrip_for_the_fixtures(tmp_path):
    write_wav(tmp_path / "a.wav", np.zeros(1600, np.float32))
    assert AudioStream(tmp_path / "a.wav").duration == pytest.approx(0.1)
