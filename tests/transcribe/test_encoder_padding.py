"""The shorter encoder input (opt-in ``encoder_padding``) on the real model: the frame count,
the text of JFK, and a batch of windows of different encoder lengths decoding as each does
alone."""

import pytest

from helpers import JFK_PHRASE, normalized
from leanspeech import Transcriber
from leanspeech.audio import decode_audio
from leanspeech.stt.decode_loop import encode_window
from leanspeech.stt.options import TranscribeOptions
from leanspeech.stt.windows import Window

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def padded():
    with Transcriber("tiny.en", precision="int8", encoder_padding=5) as t:
        yield t


def test_frames_follow_the_window_and_stop_at_30_seconds(padded):
    engine = padded.engine
    assert engine.encoder_frames(11.0) == 2000  # 11 + 5 s, rounded up to 20 s
    assert engine.encoder_frames(3.0) == 1000 and engine.encoder_frames(29.0) == 3000
    engine.encoder_pad_s = None
    try:
        assert engine.encoder_frames(3.0) == 3000  # Whisper's 30 s
    finally:
        engine.encoder_pad_s = 5


def test_jfk_with_the_shorter_input(padded, jfk):
    result = padded.transcribe(jfk)
    assert JFK_PHRASE in normalized(result.text)
    window = Window.of(decode_audio(jfk))
    assert padded.engine.encode(window).shape[0] == 1000  # 2000 frames -> 1000 encoder positions
    assert padded.engine.encode(window, span_s=25.0).shape[0] == 1500


def test_windows_of_different_encoder_lengths_decode_as_alone(padded, jfk):
    audio = decode_audio(jfk)
    short, full = Window.of(audio[: 16000 * 3]), Window.of(audio)
    options = TranscribeOptions(beam_size=5, without_timestamps=True)
    items = [encode_window(padded.engine, w, "en") for w in (short, full)]
    assert items[0].encoded.shape[0] != items[1].encoded.shape[0]
    together = padded.engine.decode(items, options)
    alone = [padded.engine.decode([it], options)[0] for it in items]
    assert [[s.text for s in r] for r in together] == [[s.text for s in r] for r in alone]



def test_a_call_can_ask_its_own_padding_and_live_sessions_do(padded, jfk):
    """``TranscribeOptions.encoder_padding`` (what every live decode passes) overrides the
    model's setting for that call only."""
    from leanspeech.streaming.options import LiveOptions

    engine = padded.engine
    assert engine.encoder_frames(3.0, pad_s=0.0) == 500 and engine.encoder_frames(3.0, pad_s=10.0) == 1500
    assert engine.encoder_frames(3.0) == 1000  # the model's own 5 s
    assert LiveOptions().transcribe_options().encoder_padding == 5.0
    assert LiveOptions(encoder_padding=None).transcribe_options().encoder_padding is None
    window = Window.of(decode_audio(jfk))
    item = encode_window(engine, window, "en", pad_s=10.0)
    assert item.encoded.shape[0] == 1250  # 11 + 10 s, rounded up to 25 s: 2500 frames


def test_a_short_window_may_not_generate_whisper_s_whole_text_context(padded):
    """A loop on a short window stops at ``TOKENS_PER_S`` a second (plus slack and the
    prompt); a 30 s window keeps Whisper's 448."""
    from leanspeech.stt.ct2_engine import TOKENS_PER_S, TOKENS_SLACK

    engine = padded.engine
    assert engine.max_length(3.0, 4) == 4 + 3 * TOKENS_PER_S + TOKENS_SLACK < 448
    assert engine.max_length(30.0, 4) == engine.model.max_length == 448
