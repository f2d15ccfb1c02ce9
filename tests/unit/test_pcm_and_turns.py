"""PCM conversion for the protocols (G.711, 8-32 bit, channels, one resampler per stream),
streamed turn detection on real speech, and sentence cutting of streamed text."""

import audioop  # noqa: F401  (deprecated, present in 3.11: the reference for G.711 here)
import warnings

import numpy as np
import pytest

from leanspeech.errors import InvalidAudioError
from leanspeech.server.pcm import ALAW, ULAW, StreamConverter, int_to_float
from leanspeech.streaming.turn_detector import TurnDetector
from leanspeech.stt.vad import SileroStream
from leanspeech.tts.chunking import complete_sentences


def test_g711_tables_match_the_standard_decoder():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        codes = bytes(range(256))
        assert np.array_equal(ULAW * 32768, np.frombuffer(audioop.ulaw2lin(codes, 2), "<i2"))
        assert np.array_equal(ALAW * 32768, np.frombuffer(audioop.alaw2lin(codes, 2), "<i2"))


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_every_sample_width_and_channel_count_becomes_mono_float(width):
    ramp = np.linspace(-0.5, 0.5, 64)
    if width == 1:
        data = (ramp * 128 + 128).astype(np.uint8).tobytes()
    else:
        ints = (ramp * 2 ** (8 * width - 1)).astype(np.int64)
        data = b"".join(int(v).to_bytes(width, "little", signed=True) for v in ints)
    assert np.allclose(int_to_float(data, width), ramp, atol=1 / 2 ** (8 * width - 2))
    stereo = b"".join(data[i:i + width] * 2 for i in range(0, len(data), width))
    assert np.allclose(int_to_float(stereo, width, 2), int_to_float(data, width))


def test_bad_pcm_is_a_clear_error():
    with pytest.raises(InvalidAudioError, match="multiple of 4 bytes"):
        int_to_float(b"\x00\x01\x02", 2, 2)
    with pytest.raises(InvalidAudioError, match="width"):
        int_to_float(b"\x00" * 10, 5)
    with pytest.raises(InvalidAudioError, match="sample rate"):
        StreamConverter(10)


def test_a_stream_resamples_in_chunks_as_it_would_whole():
    rate = 44100
    t = np.arange(rate) / rate
    data = (np.sin(2 * np.pi * 440 * t) * 16000).astype("<i2").tobytes()
    whole = StreamConverter(rate)
    reference = np.concatenate([whole.convert(data), whole.flush()])
    chunked = StreamConverter(rate)
    parts = [chunked.convert(data[i:i + 1234 * 2]) for i in range(0, len(data), 1234 * 2)]
    got = np.concatenate([*parts, chunked.flush()])
    assert got.shape[0] == reference.shape[0] == 16000 and np.abs(got - reference).max() < 1e-4
    assert chunked.received_s == pytest.approx(1.0)


def test_streamed_vad_is_the_whole_file_vad_and_finds_the_turns(jfk):
    from leanspeech.audio import decode_audio
    from leanspeech.stt.vad import bounded_vad_model

    audio = decode_audio(jfk)
    n = audio.shape[0] // 512 * 512
    stream, rng, probs = SileroStream(), np.random.default_rng(1), []
    i = 0
    while i < n:
        step = int(rng.integers(50, 4000))
        probs.append(stream.probabilities(audio[i:min(i + step, n)]))
        i += step
    assert np.array_equal(np.concatenate(probs), bounded_vad_model()(audio[:n]).reshape(-1))

    silence = np.zeros(16000, np.float32)
    events = TurnDetector(0.5, 0.5).feed(np.concatenate([silence, audio, silence]))
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "stop" and kinds == ["start", "stop"] * (len(kinds) // 2)
    assert 1.0 <= events[0].at_s <= 1.6 and 11.0 <= events[-1].at_s <= 12.6
    long_pause = TurnDetector(0.5, 2.0).feed(np.concatenate([silence, audio, silence, silence, silence]))
    assert [e.kind for e in long_pause] == ["start", "stop"]  # JFK's pauses are shorter than 2 s
    assert TurnDetector().feed(np.zeros(48000, np.float32)) == []


def test_a_live_buffer_vad_is_the_whole_stream_vad(jfk):
    """``SpeechTrack`` (what a live session asks every 0.2 s) runs Silero on new audio only;
    its regions are those of the whole stream, before and after the buffer is cut."""
    from faster_whisper.vad import VadOptions

    from leanspeech.audio import decode_audio
    from leanspeech.stt.vad import SpeechTrack, speech_timestamps

    audio = decode_audio(jfk)
    stream = np.concatenate([audio, np.zeros(16000, np.float32), audio, np.zeros(8000, np.float32)])
    options = VadOptions(min_silence_duration_ms=500, speech_pad_ms=100)
    whole = [(c["start"], c["end"]) for c in speech_timestamps(stream, options)]
    cut = audio.shape[0] + 77  # in the pause, between two frames
    track, before = SpeechTrack(), []
    for total in range(3200, stream.shape[0] + 3200, 3200):
        start = 0 if total < cut + 16000 else cut
        regions = track.regions(stream[start:total], start, options)
        before = regions if start == 0 else before
    assert before == [r for r in whole if r[1] < cut] and len(before) >= 3  # the first clip, uncut
    assert regions == [r for r in whole if r[0] >= cut]  # the second, after the cut


def test_streamed_text_is_cut_at_finished_sentences():
    assert complete_sentences("Hello there. How are") == (["Hello there."], "How are")
    assert complete_sentences("One! Two? Three.") == (["One!", "Two?"], "Three.")
    assert complete_sentences("no end yet") == ([], "no end yet")
