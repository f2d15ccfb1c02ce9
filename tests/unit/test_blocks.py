"""Long files in blocks (``stt/blocks.py``): the file is read only as far as a block needs,
blocks are cut in silence, and together they hold the speech the whole file's VAD finds."""

import numpy as np
import pytest

from helpers import load_audio
from leanspeech.audio import SAMPLE_RATE
from leanspeech.stt.blocks import blocks, shifted
from leanspeech.stt.options import TranscribeOptions
from leanspeech.stt.result import Segment, Word
from leanspeech.stt.windows import speech_chunks

PIECE = 30 * SAMPLE_RATE


@pytest.fixture(scope="module")
def speech(jfk):
    """JFK eleven times, 1.5 s of silence after each (~140 s)."""
    one = load_audio(jfk)
    gap = np.zeros(int(1.5 * SAMPLE_RATE), np.float32)
    return np.concatenate([one, gap] * 11)


def pieces_of(audio: np.ndarray, pulled: list[int]):
    for i in range(0, audio.shape[0], PIECE):
        pulled[0] += min(PIECE, audio.shape[0] - i)
        yield audio[i : i + PIECE]


def test_reads_only_as_far_as_a_block_needs(speech):
    pulled = [0]
    first = next(blocks(pieces_of(speech, pulled), TranscribeOptions(block_seconds=60)))
    assert first.offset == 0 and first.plan.windows
    assert pulled[0] <= 90 * SAMPLE_RATE  # one block and the piece that filled it, not the file


def test_blocks_are_cut_in_silence_and_keep_all_the_speech(speech):
    options = TranscribeOptions(block_seconds=60)
    cut = list(blocks(pieces_of(speech, [0]), options))
    assert len(cut) >= 2
    offsets = [b.offset for b in cut]
    assert offsets == sorted(offsets) and offsets[0] == 0
    spans = []  # every planned chunk on the file's timeline (samples)
    for b in cut:
        start = int(round(b.offset * SAMPLE_RATE))
        spans += [(start + c["start"], start + c["end"]) for c in b.plan.chunks or []]
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))  # in order, no overlap
    whole = speech_chunks(speech, options)
    planned = sum(e - s for s, e in spans)
    found = sum(c["end"] - c["start"] for c in whole)
    assert planned == pytest.approx(found, rel=0.03)
    assert sum(b.plan.speech_s for b in cut) == pytest.approx(found / SAMPLE_RATE, rel=0.03)
    tolerance = SAMPLE_RATE // 2
    for b in cut[1:]:  # a cut falls where the whole file's VAD hears no speech, never mid-word
        at = int(round(b.offset * SAMPLE_RATE))
        assert not any(c["start"] + tolerance < at < c["end"] - tolerance for c in whole), at


def test_a_handed_over_block_is_held_by_its_reader_alone(speech):
    """While a block's windows are decoded, the generator holds neither its samples nor its
    plan: a window's audio can go as soon as the decode is done with it."""
    import gc
    import weakref

    cut = blocks(pieces_of(speech, [0]), TranscribeOptions(block_seconds=60))
    block = next(cut)
    audio = weakref.ref(block.plan.windows[0].audio)
    del block
    gc.collect()
    assert audio() is None
    assert next(cut).offset > 0  # the generator goes on from where it was


def test_without_vad_blocks_are_whole_windows(speech):
    cut = list(blocks(pieces_of(speech, [0]), TranscribeOptions(block_seconds=60, vad=False)))
    windows = [(b.offset + w.offset, w.duration) for b in cut for w in b.plan.windows]
    assert [round(start, 3) for start, _ in windows] == [30.0 * i for i in range(len(windows))]
    assert all(d == pytest.approx(30.0) for _, d in windows[:-1])
    assert sum(d for _, d in windows) == pytest.approx(speech.shape[0] / SAMPLE_RATE)


def test_silence_is_dropped_block_by_block():
    silence = np.zeros(400 * SAMPLE_RATE, np.float32)
    pulled = [0]
    cut = list(blocks(pieces_of(silence, pulled), TranscribeOptions(block_seconds=60)))
    assert pulled[0] == silence.shape[0]
    assert all(not b.plan.windows for b in cut) and len(cut) >= 5


def test_shifted_moves_segment_words_and_seek():
    seg = Segment(3, 1.0, 2.0, " hi", words=(Word(1.0, 1.5, " hi", 0.9),), seek=100)
    moved = shifted(seg, 60.0, 7)
    assert (moved.id, moved.start, moved.end, moved.seek) == (7, 61.0, 62.0, 6100)
    assert moved.words == (Word(61.0, 61.5, " hi", 0.9),)


def test_block_seconds_is_checked():
    from leanspeech.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError, match="block_seconds"):
        TranscribeOptions(block_seconds=5)
