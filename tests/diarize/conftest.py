import pytest

#: (speaker, text) turns: four voices (JFK's recording, Piper, two espeak-ng voices) at
#: different loudness, pauses of 0.4-1.5 s, and some back-and-forth of short turns
GAINS = {"jfk": 1.0, "piper": 0.7, "espeak-f": 0.4, "espeak-m": 0.25}


def plan():
    from leanspeech.measure.conversation import sentences

    s = sentences(12, seed=5)
    return [("jfk", "0"), ("piper", s[0]), ("espeak-f", s[1]), ("espeak-m", s[2]),
            ("jfk", "1"), ("piper", s[3] + " " + s[4]), ("espeak-f", "Sure, go ahead."), ("espeak-m", s[5]),
            ("jfk", "2"), ("espeak-f", s[6]), ("piper", "I see."), ("espeak-m", s[7] + " " + s[8]),
            ("jfk", "3"), ("piper", s[9]), ("espeak-f", s[10]), ("espeak-m", s[11])]


@pytest.fixture(scope="session")
def conversation(jfk):
    from leanspeech.measure.conversation import build

    return build(plan(), name="test4", jfk=jfk, gains=GAINS)


@pytest.fixture(scope="session")
def references(tmp_path_factory):
    """A 3-6 s clip of Piper and of the first espeak voice, saying what the conversation does not."""
    from leanspeech.audio import write_wav
    from leanspeech.measure.conversation import _clip, trim

    out = {}
    for speaker, text in (("piper", "The lighthouse keeper counts the ships at night."),
                          ("espeak-f", "Please remember to water the plants on Friday.")):
        path = tmp_path_factory.mktemp("refs") / f"{speaker}.wav"
        write_wav(path, trim(_clip(speaker, text, None)) * GAINS[speaker])
        out[speaker] = path
    return out


@pytest.fixture(scope="session")
def speaker_model(tmp_path_factory):
    from leanspeech.diarize.campplus import CamPlus, ensure_onnx

    model = CamPlus(ensure_onnx(tmp_path_factory.mktemp("models")))
    yield model
    model.close()
