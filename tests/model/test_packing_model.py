"""Packing on the real model: many short files through ``transcribe_many`` with and without
packing. Packed, the encoder runs fewer times; every file still gets its own words (each
Piper clip has sentences no other clip has), its times inside its own length, and a WER
close to the one it gets unpacked."""

import numpy as np
import pytest

from helpers import heard_jfk, normalized, wer
from leanspeech import Transcriber
from leanspeech.audio import decode_audio
from leanspeech.bench.corpus import SENTENCES, sentences_clip

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def files(jfk):
    out = [(decode_audio(jfk), None)]
    for start, count in ((0, 1), (1, 2), (3, 1), (4, 3), (7, 1), (8, 2)):
        path, text = sentences_clip(count=count, start=start, pause=0.4)
        out.append((decode_audio(path), text))
    out.append((np.zeros(16000 * 2, np.float32), ""))  # silence: nothing to decode
    return out


def run(t: Transcriber, files, pack: bool):
    encodes = []
    encode = t.engine.encode

    def counting(window, span_s=None, pad_s=None):
        encodes.append(window.duration)
        return encode(window, span_s, pad_s)

    t.engine.encode = counting
    try:
        return dict(t.transcribe_many([a for a, _ in files], pack_files=pack)), encodes
    finally:
        t.engine.encode = encode


def test_packed_files_each_get_their_own_words(files):
    with Transcriber("tiny.en", precision="int8", batch_size=8) as t:
        packed, packed_encodes = run(t, files, True)
        alone, alone_encodes = run(t, files, False)
    assert len(alone_encodes) == 7  # one window a file (the silent one has none)
    assert len(packed_encodes) < len(alone_encodes)  # parts decoded again alone count here too
    assert sorted(packed) == list(range(len(files)))
    for i, (audio, reference) in enumerate(files):
        result = packed[i]
        duration = audio.shape[0] / 16000
        assert result.info.duration == pytest.approx(duration)
        assert all(0.0 <= s.start <= s.end <= duration + 0.01 for s in result.segments), result.segments
        if reference is None:
            assert heard_jfk(result.text), result.text
        elif reference == "":
            assert result.text == ""
        else:
            assert wer(reference, result.text) <= wer(reference, alone[i].text) + 0.15, (result.text, reference)
            others = [s for s in SENTENCES[:10] if s not in reference]
            heard = normalized(result.text)
            assert not any(normalized(s)[:25] in heard for s in others), (result.text, reference)
