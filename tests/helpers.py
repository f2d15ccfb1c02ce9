"""Shared test helpers (imported by name; conftest modules cannot be imported reliably)."""

JFK_PHRASE = "ask not what your country can do for you"


def normalized(text: str) -> str:
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()(text)


def wer(ref: str, hyp: str) -> float:
    import jiwer

    return jiwer.wer(normalized(ref), normalized(hyp))
