"""The diarizer on a conversation built with an exact reference: DER, the speaker count,
bounds, known speakers, memory, and the library's Transcriber path."""

import pytest

from leanspeech.audio import AudioStream
from leanspeech.diarize.cluster import SpeakerBounds
from leanspeech.diarize.diarizer import diarize, voice_print
from leanspeech.measure.der import der

pytestmark = pytest.mark.model


def _majority(turns, reference, who):
    """The hypothesis label that covers most of ``who``'s reference speech."""
    cover: dict[str, float] = {}
    for r in (t for t in reference if t.speaker == who):
        for h in turns:
            cover[h.speaker] = cover.get(h.speaker, 0.0) + max(0.0, min(r.end, h.end) - max(r.start, h.start))
    return max(cover, key=cover.get)


def test_speakers_found_and_der_bounded(speaker_model, conversation):
    result = diarize(speaker_model, AudioStream(conversation.path))
    assert len(result.speakers) == 4
    score = der(conversation.turns, result.turns)
    assert score.der < 0.15, score
    assert score.confusion / score.total < 0.08, score
    labels = {_majority(result.turns, conversation.turns, w) for w in conversation.speakers}
    assert len(labels) == 4  # each voice its own speaker


def test_speaker_bounds_are_honoured(speaker_model, conversation):
    assert len(diarize(speaker_model, AudioStream(conversation.path), SpeakerBounds(num=2)).speakers) == 2
    assert len(diarize(speaker_model, AudioStream(conversation.path), SpeakerBounds(max=3)).speakers) <= 3
    assert len(diarize(speaker_model, AudioStream(conversation.path), SpeakerBounds(min=4, max=6)).speakers) >= 4


def test_known_speakers_are_named(speaker_model, conversation, references):
    from leanspeech.diarize.request import known_speakers_from

    known = known_speakers_from(["pat", "fran"], [references["piper"], references["espeak-f"]])
    prints = {name: voice_print(speaker_model, clip) for name, clip in known.items()}
    result = diarize(speaker_model, AudioStream(conversation.path), known=prints)
    assert _majority(result.turns, conversation.turns, "piper") == "pat"
    assert _majority(result.turns, conversation.turns, "espeak-f") == "fran"
    assert {"pat", "fran"} <= set(result.speakers) and len(result.speakers) == 4


def test_a_clip_without_speech_is_no_reference(speaker_model):
    import numpy as np

    from leanspeech.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError, match="no speech"):
        voice_print(speaker_model, np.zeros(16000 * 3, np.float32))


def test_silence_has_no_speakers(speaker_model):
    import numpy as np

    result = diarize(speaker_model, [np.zeros(16000 * 5, np.float32)])
    assert result.turns == [] and result.speakers == [] and result.duration == pytest.approx(5.0)


def test_memory_is_released_on_unload(tmp_path):
    """CAM++ through the model manager: counted while loaded, handed back on unload."""
    from leanspeech.runtime.diarize_service import MODEL, diarize_loader
    from leanspeech.runtime.manager import ModelManager

    manager = ModelManager({"diarize": diarize_loader(tmp_path, ttl=-1)})
    with manager.acquire("diarize", MODEL) as model:
        import numpy as np

        model.embed(np.random.default_rng(0).normal(size=(16, 148, 80)).astype(np.float32))
        status = manager.status()[0]
        assert status["kind"] == "diarize" and status["bytes"] > 28 * 1024**2
    record = manager.unload(f"diarize:{MODEL}")
    assert record is not None and manager.status() == []
    assert record["rss_freed"] > 0.5 * status["load_rss"], (record, status)


def test_the_library_labels_segments(conversation):
    from leanspeech import Transcriber

    with Transcriber("tiny.en") as t:
        result = t.transcribe(str(conversation.path), diarize=True)
        named = t.transcribe(str(conversation.path), num_speakers=2)
    speakers = {s.speaker for s in result.segments}
    assert len(speakers) >= 3 and None not in speakers
    assert len({s.speaker for s in named.segments}) == 2
    assert all(w.start >= s.start - 0.01 and w.end <= s.end + 0.01 for s in result.segments for w in s.words or ())
