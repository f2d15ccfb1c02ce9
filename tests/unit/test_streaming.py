"""The live pieces that need no model: word agreement, repeats, loops, the protocol's frames
and options."""

import json

import numpy as np
import pytest

from leanspeech.streaming import LiveOptions
from leanspeech.streaming.stabilize import agreed_prefix, drop_committed, loop_start, norm, speech_words
from leanspeech.stt.segments import TimedWord, WindowSegment


def words(text, start=0.0, step=0.5):
    return [TimedWord(" " + w, start + i * step, start + (i + 1) * step) for i, w in enumerate(text.split())]


def texts(ws):
    return [w.word for w in ws]


def test_agreement_ignores_case_and_punctuation():
    assert norm(" Country,") == "country"
    assert agreed_prefix(words("ask not what"), words("Ask not, what your")) == 3
    assert agreed_prefix(words("ask not what"), words("and not what")) == 0


def test_drop_committed_by_time_and_by_repeated_tail():
    committed = words("and so my fellow")
    again = words("and so my fellow americans ask", 0.0)
    assert texts(drop_committed(again, committed, committed[-1].end)) == [" americans", " ask"]
    # times shifted by a re-decode: the repeated tail is still dropped
    shifted = words("fellow americans", committed[-1].end + 0.3)
    assert texts(drop_committed(shifted, committed, committed[-1].end)) == [" americans"]


def test_loop_detection():
    assert loop_start(words("thank you thank you thank you")) == 0
    assert loop_start(words("so it goes on and on and on and on")) == 3
    assert loop_start(words("ask not what your country can do for you")) is None


def test_a_last_word_the_aligner_gave_no_frames_stays_with_its_phrase():
    """The closing decode of a replay: " the" stretched over "summer"'s audio, " summer." left
    with no length 0.22 s past the speech. It belongs to the phrase; words in silence do not."""
    speech = [(14.24, 17.38)]
    heard = [TimedWord(" during", 16.38, 16.84), TimedWord(" the", 16.84, 17.6), TimedWord(" summer.", 17.6, 17.6)]
    assert texts(speech_words(heard, speech)) == [" during", " the", " summer."]
    # a word of its own in the silence, or a squeezed word after one that was dropped, goes
    silence = [TimedWord(" during", 16.38, 16.84), TimedWord(" you", 18.0, 18.4), TimedWord(" know", 18.4, 18.4)]
    assert texts(speech_words(silence, speech)) == [" during"]
    # a squeezed word that does not start where the kept word ends is not its tail
    apart = [TimedWord(" during", 16.38, 16.84), TimedWord(" the", 17.9, 17.9)]
    assert texts(speech_words(apart, speech)) == [" during"]


def test_live_options_are_checked():
    with pytest.raises(Exception, match="context_s"):
        LiveOptions(context_s=1)
    with pytest.raises(Exception, match="task"):
        LiveOptions(task="summarize")
    with pytest.raises(Exception, match="VAD parameter"):
        LiveOptions(vad_parameters={"loudness": 1})


def test_protocol_frames_and_options():
    from leanspeech.server.whisperlive_ws import ProtocolError, parse_config, parse_frame

    samples, bad = parse_frame(np.array([0.5, np.nan, -0.25], "<f4").tobytes(), "float32")
    assert bad == 1 and samples.tolist() == [0.5, 0.0, -0.25]
    samples, _ = parse_frame(np.array([16384, -32768], "<i2").tobytes(), "int16")
    assert samples.tolist() == [0.5, -1.0]
    with pytest.raises(ProtocolError, match="multiple of 4"):
        parse_frame(b"\x00" * 6, "float32")
    cfg = parse_config(json.dumps({"uid": "a", "hotwords": "x", "audio_format": "int16", "target_language": "fr",
                                   "max_speakers": 2}))
    assert cfg.uid == "a" and cfg.audio_format == "int16" and cfg.hotwords == "x" and cfg.max_speakers == 2
    assert cfg.model_extra == {"target_language": "fr"}  # accepted, ignored (logged once)
    for bad_frame, match in (("{", "not JSON"), ("{}", "uid"), ('{"uid": "a", "audio_format": "mp3"}', "audio_format")):
        with pytest.raises(ProtocolError, match=match):
            parse_config(bad_frame)


def test_drop_committed_aligns_by_text_when_times_move():
    # committed "... can do" ending at 6.0 s; a re-decode places "for" before that point
    committed = words("your country can do", 4.0)
    redecoded = [TimedWord(" can", 5.0, 5.4), TimedWord(" do", 5.4, 5.7), TimedWord(" for", 5.7, 5.9),
                 TimedWord(" you", 5.9, 6.3)]
    assert texts(drop_committed(redecoded, committed, 6.0)) == [" for", " you"]
    # the same word later in the sentence is not mistaken for the committed one
    later = words("can do for you ask what you can do for your", 4.6, 0.3)
    assert [w.strip() for w in texts(drop_committed(later, committed, 6.0))][:3] == ["for", "you", "ask"]
    # the buffer was cut 0.2 s before the commit point and the decode stretches "for" back to it
    cut = [TimedWord(" for", 5.8, 6.2), TimedWord(" you", 6.2, 6.9)]
    assert texts(drop_committed(cut, committed, 6.0, window_start=5.8)) == [" for", " you"]
    assert texts(drop_committed(cut, committed, 6.0)) == [" you"]  # without the cut: by time


def test_drop_committed_needs_the_repeat_where_the_committed_words_were():
    # "... can do for you." committed, "you." stretched over the pause to 8.26 s; the buffer was
    # cut at 7.88 s, just before "ask": the "you" of "ask what you" is a new word, not a repeat
    # (times from a real decode that lost "ask what you" on CI)
    committed = [TimedWord(" do", 6.76, 7.0), TimedWord(" for", 7.0, 7.24), TimedWord(" you.", 7.24, 8.26)]
    decode = [TimedWord(" ask", 7.88, 8.66), TimedWord(" what", 8.66, 8.94), TimedWord(" you", 8.94, 9.26),
              TimedWord(" can", 9.26, 9.46), TimedWord(" do", 9.46, 9.72)]
    kept = texts(drop_committed(decode, committed, 8.26, window_start=7.88))
    assert kept == [" ask", " what", " you", " can", " do"]


def test_a_completed_segment_takes_the_words_of_the_latest_whole_decode():
    """Two early decodes agree on a wrong word; the segment that completes at the end of the
    stream is taken from the last decode, which heard it all."""
    from leanspeech.streaming.session import StreamingSession

    session = StreamingSession(LiveOptions(use_vad=False))

    def decode(until, text, start=2.0, step=0.4):
        session.feed(np.zeros(int(until * 16000) - session._total, np.float32))
        window = session.next_window()
        assert window is not None and window.start == 0.0
        session.apply(window, [WindowSegment(text, (), 0.0, until, words=tuple(words(text, start, step)))])

    decode(4.2, "asked not")
    decode(5.5, "asked not what")
    assert session.in_progress().text.startswith(" asked")  # agreed, committed
    decode(8.0, "ask not what your country")
    session.finish()
    assert [s.text for s in session.segments()] == [" ask not what your country"]
    assert all(s.completed for s in session.segments())


def test_a_pause_heard_late_still_closes_the_phrase_before_it(jfk):
    """A session busy decoding looks at VAD only after the next phrase has begun; the pause
    is still in the buffer between two speech regions, and the phrase before it closes there
    (it used to merge with the next one, completed only at the next pause seen)."""
    from leanspeech.audio import decode_audio
    from leanspeech.streaming.session import StreamingSession

    audio = decode_audio(jfk)  # "And so my fellow Americans" ends ~2.3 s, "ask not" from ~3.2 s
    session = StreamingSession(LiveOptions())
    session.feed(audio[: 2 * 16000])
    partial = session.next_window()
    assert partial is not None and not partial.closing
    session.feed(audio[2 * 16000 : 4 * 16000])  # the pause went by while "decoding"
    session.apply(partial, [WindowSegment(" And so my fellow", (), 0.0, 2.0,
                                          words=tuple(words("And so my fellow", 0.4, 0.4)))])
    closing = session.next_window()
    assert closing is not None and closing.closing and 2.3 < closing.end < 3.3
    session.apply(closing, [WindowSegment(" And so my fellow Americans", (), 0.0, closing.end,
                                          words=tuple(words("And so my fellow Americans", 0.4, 0.38)))])
    assert [(s.text, s.completed) for s in session.segments()] == [(" And so my fellow Americans", True)]
    session.feed(audio[4 * 16000 : 4 * 16000 + 6400])
    after = session.next_window()  # "ask not", still being spoken: a partial, not closed again
    assert after is not None and not after.closing and after.end == 4.4
