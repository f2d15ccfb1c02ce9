"""Packing on the real model: many short files through ``transcribe_many`` with and without
packing. Packed, the encoder runs fewer times; every file still gets its own words (each
Piper clip has sentences no other clip has), its times inside its own length, and a WER
close to the one it gets unpacked."""

import numpy as np
import pytest

from helpers import heard_jfk, normalized, wer
from leanspeech import Transcriber
from leanspeech.audio import decode_audio
from leanspeech.measure.corpus import SENTENCES, sentences_clip

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


def serve(engine, files, options, pack: bool):
    """Every file as a concurrent request through the server's batcher (``pack``: the short
    windows of the requests packed together): (texts, encoder calls)."""
    from concurrent.futures import ThreadPoolExecutor

    from leanspeech.stt.batcher import Batcher
    from leanspeech.stt.blocks import Feed, SegmentStream

    encodes = []
    encode = engine.encode

    def counting(window, span_s=None, pad_s=None):
        encodes.append(window.duration)
        return encode(window, span_s, pad_s)

    def request(audio):
        stream = SegmentStream(engine, [audio], options, batcher, Feed(group=1, batch_size=4))
        return "".join(s.text for s in stream)

    engine.encode = counting
    batcher = Batcher(engine, window_ms=500, max_batch=4, pack=pack)
    try:
        with ThreadPoolExecutor(len(files)) as pool:
            return list(pool.map(request, [a for a, _ in files])), encodes
    finally:
        batcher.close()
        engine.encode = encode


@pytest.mark.parametrize("timestamps", [True, False], ids=["segments", "plain-text"])
def test_concurrent_requests_packed_by_the_batcher_each_get_their_own_words(files, timestamps):
    from leanspeech.stt.options import TranscribeOptions

    options = TranscribeOptions(without_timestamps=not timestamps)
    with Transcriber("tiny.en", precision="int8") as t:
        packed, packed_encodes = serve(t.engine, files, options, pack=True)
        alone, alone_encodes = serve(t.engine, files, options, pack=False)
    assert len(alone_encodes) == 7
    assert len(packed_encodes) < len(alone_encodes)  # parts decoded again alone count here too
    for text, unpacked, (_, reference) in zip(packed, alone, files, strict=True):
        if reference is None:
            assert heard_jfk(text), text
        elif reference == "":
            assert text == ""
        else:
            assert wer(reference, text) <= wer(reference, unpacked) + 0.15, (text, reference)
            others = [s for s in SENTENCES[:10] if s not in reference]
            assert not any(normalized(s)[:25] in normalized(text) for s in others), (text, reference)


def test_parts_that_say_the_same_words_are_not_taken_for_a_loop(jfk):
    """Two requests with the same speech, packed: the pack's text is the same sentence twice,
    which compresses like a decoding loop. Judged whole, it went to the temperature fallback
    (sampled text, "asked about you country"); each part is judged on its own."""
    from leanspeech.stt.decode_loop import encode_window
    from leanspeech.stt.packing import Packer, spans, unpack
    from leanspeech.stt.windows import Window

    with Transcriber("tiny.en", precision="int8") as t:
        audio = decode_audio(jfk)
        packer: Packer[int] = Packer(1)
        for key in range(2):
            assert packer.add(key, Window.of(audio))
        pack = packer.packs[0]
        item = encode_window(t.engine, pack.window(), "en")
        (parts,) = t.engine.decode_parts([item], [spans(pack)], t.options)
    results = unpack(pack, parts)
    assert all(r is not None for r in results)
    for (segment,) in results:
        assert segment.temperature == 0.0, segment
        assert heard_jfk(segment.text), segment.text
