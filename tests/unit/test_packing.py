"""Packing short windows of several files into one 30-second window (``stt/packing.py``):
first fit within the limit and the pack count, each piece of text to the part it was heard
in, doubtful parts given back as None (to be decoded alone), and times back on each part's
own timeline."""

import numpy as np
import pytest

from leanspeech.stt.options import TranscribeOptions
from leanspeech.stt.packing import GAP_S, Pack, Packer, assign, packable, spans, unpack
from leanspeech.stt.segments import TimedWord, WindowSegment
from leanspeech.stt.windows import Window


def window(seconds: float, offset: float = 0.0) -> Window:
    return Window(np.ones(int(seconds * 16000), np.float32), offset, seconds)


def test_first_fit_within_30_seconds_and_the_pack_count():
    packer: Packer[str] = Packer(max_packs=2)
    for key, seconds in (("a", 10.0), ("b", 12.0), ("c", 9.0), ("d", 6.0), ("e", 28.0)):
        assert packer.add(key, window(seconds)) == (key != "e")  # e needs a third pack
    first, second = packer.packs
    assert [p.key for p in first.parts] == ["a", "b", "d"]  # 10 + 1 + 12 + 1 + 6 = 30
    assert first.duration == pytest.approx(30.0)
    assert [p.key for p in second.parts] == ["c"]
    assert spans(first) == [(0.0, 10.0), (11.0, 23.0), (24.0, 30.0)]
    audio = first.window()
    assert audio.duration == pytest.approx(30.0) and audio.offset == 0.0
    assert not audio.audio[int(10.2 * 16000) : int(10.8 * 16000)].any()  # the gap is silence


def test_a_single_part_is_its_own_window_and_nothing_is_packed_with_limit_zero():
    w = window(31.0, offset=4.0)
    packer: Packer[int] = Packer(max_packs=3, limit=0.0)
    assert packer.add(1, w) and packer.add(2, window(1.0)) and packer.add(3, window(1.0))
    assert not packer.add(4, window(1.0))
    assert packer.packs[0].window() is w
    assert [len(p.parts) for p in packer.packs] == [1, 1, 1]


def test_pieces_go_to_the_part_they_were_heard_in():
    parts = [(0.0, 5.0), (6.0, 12.0), (13.0, 20.0)]
    pieces = [(0.2, 1.0, [1]), (1.0, 4.8, [2]), (6.1, 11.0, [3]), (12.2, 12.6, [4]), (13.0, 19.0, [5])]
    assert assign(pieces, parts) == [[1, 2], [3, 4], [5]]  # 12.4: the second part's half of the gap


def test_a_part_without_text_and_parts_joined_across_a_gap_are_doubtful():
    parts = [(0.0, 5.0), (6.0, 12.0), (13.0, 20.0)]
    assert assign([(0.0, 4.0, [1]), (13.5, 19.0, [3])], parts) == [[1], None, [3]]
    # one word from 4.5 to 6.5 spans the gap between the first two parts whole
    assert assign([(0.0, 4.5, [1]), (4.5, 6.5, [2]), (7.0, 11.0, [3]), (14.0, 18.0, [4])], parts) == [None, None, [4]]


def test_unpack_moves_times_to_each_part_window():
    pack: Pack[str] = Pack()
    pack.add("a", window(5.0, offset=0.0))
    pack.add("b", window(4.0, offset=30.0))  # the second window of a long file
    word = TimedWord(" hi", 0.5, 0.9, 0.9, (1,))
    seg = WindowSegment(text=" hi", tokens=(1,), start=0.0, end=4.0, words=(word,))
    a, b = unpack(pack, [None, seg])
    assert a is None
    assert b[0].start == 30.0 and b[0].end == 34.0 and b[0].words[0].start == pytest.approx(30.5)
    assert pack.parts[1].start == pytest.approx(5.0 + GAP_S)


class _Engine:
    multilingual = False

    def decode_parts(self, *a):  # pragma: no cover - only its presence matters
        raise AssertionError


class _Multilingual(_Engine):
    multilingual = True


def test_packing_needs_an_engine_that_can_a_known_language_and_aligned_words():
    options = TranscribeOptions()
    assert packable(options, _Engine())
    assert not packable(options, object())  # no decode_parts (the torch engine)
    assert not packable(options, _Multilingual())  # which language? each file its own
    assert packable(options.with_(language="de"), _Multilingual())
    assert packable(options.with_(without_timestamps=True), _Engine())  # a packed window is aligned anyway
    assert not packable(options.with_(multilingual=True), _Engine())


def test_windows_kept_apart_never_share_a_pack():
    packer: Packer[str] = Packer(3)
    for key in "ab":
        assert packer.add(key, Window(np.zeros(16000, np.float32), 0.0, 5.0), apart=7)  # failed together once
    assert packer.add("c", Window(np.zeros(16000, np.float32), 0.0, 5.0))
    assert [[p.key for p in pack.parts] for pack in packer.packs] == [["a", "c"], ["b"]]
    assert packer.add("d", Window(np.zeros(16000, np.float32), 0.0, 5.0), alone=True)
    assert not packer.add("e", Window(np.zeros(16000, np.float32), 0.0, 5.0), alone=True)  # 3 packs: full
