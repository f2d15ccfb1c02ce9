"""A long file read piece by piece and given out block by block (``stt/blocks.py``), with the
real model: segments come before the file is read to its end, in order, on the file's
timeline, with the same words as one block of the whole file."""

import io

import numpy as np
import pytest

from helpers import JFK_PHRASE, normalized, wer
from leanspeech import Transcriber
from leanspeech.audio import AudioStream, decode_audio
from leanspeech.errors import EmptyAudioError, InvalidAudioError

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def int8():
    with Transcriber("tiny.en", device="cpu", precision="int8", cpu_threads=2) as t:
        yield t


@pytest.fixture(scope="module")
def three_minutes():
    """Three minutes of Piper speech with pauses (three 60 s blocks), its text, its length."""
    from leanspeech.audio import SAMPLE_RATE
    from leanspeech.measure.corpus import long_form

    path, text = long_form(3.0, seed=7)
    return path, text, decode_audio(path).shape[0] / SAMPLE_RATE


class Counting(io.FileIO):
    """A file that remembers how far it has been read."""

    furthest = 0

    def readinto(self, buffer):
        n = super().readinto(buffer)
        self.furthest = max(self.furthest, self.tell())
        return n


def test_segments_come_before_the_file_is_read_to_the_end(int8, three_minutes):
    path, reference, seconds = three_minutes
    size = path.stat().st_size
    with Counting(path) as fh:
        stream = int8.segments(fh, block_seconds=60)
        first = None
        segments = []
        for segment in stream:
            if first is None:
                first = fh.furthest
            segments.append(segment)
    assert first is not None and first < 0.7 * size  # the first block's text, not the whole file's
    assert [s.id for s in segments] == list(range(1, len(segments) + 1))
    assert [s.start for s in segments] == sorted(s.start for s in segments)
    assert segments[-1].end <= seconds + 0.1
    text = " ".join(s.text.strip() for s in segments)
    assert wer(reference, text) < 0.15
    assert stream.info.duration == pytest.approx(seconds, abs=0.05)
    assert 0 < stream.info.duration_after_vad < seconds


def test_blocks_give_the_words_of_one_whole_block(int8, three_minutes):
    path, reference, _ = three_minutes
    small = int8.transcribe(path, block_seconds=60, word_timestamps=True)
    whole = int8.transcribe(path, block_seconds=3600, word_timestamps=True)
    assert wer(normalized(whole.text), normalized(small.text)) < 0.05
    assert wer(reference, small.text) < 0.15
    words = [w for s in small.segments for w in s.words]
    assert [w.start for w in words] == sorted(w.start for w in words)
    assert [s.start for s in small.segments] == sorted(s.start for s in small.segments)
    # the words both heard are at the same places of the file
    import difflib

    theirs = [w for s in whole.segments for w in s.words]
    key = [normalized(w.word) for w in words], [normalized(w.word) for w in theirs]
    pairs = [(words[m.a + k], theirs[m.b + k]) for m in difflib.SequenceMatcher(None, *key, autojunk=False)
             .get_matching_blocks() for k in range(m.size)]
    assert len(pairs) > 0.9 * len(words)
    assert sum(abs(a.start - b.start) < 0.5 for a, b in pairs) > 0.95 * len(pairs)


def test_library_info_before_the_end_is_an_error(int8, jfk):
    stream = int8.segments(jfk)
    with pytest.raises(RuntimeError, match="once every segment"):
        _ = stream.info
    assert list(stream) and stream.info.language == "en"


def test_sequential_segments_are_the_whole_transcription(int8, jfk):
    stream = int8.segments(jfk, batch_size=0)
    assert "country" in " ".join(s.text for s in stream).lower() and stream.info.batch_size == 0


def test_audio_stream_matches_whole_decode_piece_by_piece(jfk):
    stream = AudioStream(jfk, piece_s=3.0)
    pieces = list(stream)
    assert all(p.shape[0] == 3 * 16000 for p in pieces[:-1]) and len(pieces) == 4
    assert np.array_equal(np.concatenate(pieces), decode_audio(jfk))
    assert stream.duration == pytest.approx(11.0, abs=0.05) and stream.samples == 176000
    with open(jfk, "rb") as fh:
        assert np.array_equal(np.concatenate(list(AudioStream(fh))), decode_audio(jfk))


def test_audio_stream_fails_on_open(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEnot audio at all" * 50)
    with pytest.raises(InvalidAudioError, match="bad.wav: not decodable"):
        AudioStream(bad)
    with pytest.raises(EmptyAudioError, match="upload is empty"):
        AudioStream(io.BytesIO(b""))
    with pytest.raises(InvalidAudioError):
        AudioStream(io.BytesIO(b"\x00\x01" * 4000))


def test_heap_is_trimmed_before_each_group_is_encoded_and_decoded(int8, jfk, monkeypatch):
    """``heap_trim`` (the default): the free heap goes back to the OS before a group's encodes
    and before its decode; off, never. The words are the same either way."""
    from leanspeech.stt import decode_loop

    calls = []
    monkeypatch.setattr(decode_loop, "trim_heap", lambda: calls.append(1))
    trimmed = int8.transcribe(jfk)
    assert len(calls) == 2  # JFK is one window: one group, one decode
    int8.heap_trim = False
    try:
        plain = int8.transcribe(jfk)
    finally:
        int8.heap_trim = True
    assert len(calls) == 2
    assert normalized(plain.text) == normalized(trimmed.text)


def test_a_window_s_audio_goes_once_it_is_encoded(int8, jfk):
    """What waits for a decode keeps the window's times, not its samples."""
    from leanspeech.stt.decode_loop import encode_window
    from leanspeech.stt.windows import Window

    window = Window.of(decode_audio(jfk), offset=4.0)
    item = encode_window(int8.engine, window, "en")
    assert item.window.audio.size == 0
    assert (item.window.offset, item.window.duration) == (window.offset, window.duration)
    assert JFK_PHRASE in normalized(int8.engine.decode([item], int8.options)[0][0].text)
